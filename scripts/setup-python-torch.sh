#!/bin/sh
# Installs Debian's PyTorch (python3-torch, CPU) and the threaded OpenBLAS it then uses, for @rlhf/core's
# model-family tests: they compare our models with an independent implementation written in PyTorch
# (packages/core/src/model/reference/hf_reference.py), run as /usr/bin/python3 (another python3 may come first
# on PATH). Without libopenblas0-pthread torch falls back to netlib's reference BLAS (correct, slow).
# Does nothing when both are present.
set -eu
if /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 && dpkg -s libopenblas0-pthread >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-python-torch: python3-torch is missing and apt-get is not available; install python3-torch by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-torch libopenblas0-pthread >/dev/null
/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)'
