#!/bin/sh
# Installs Debian's Open MPI (openmpi-bin: mpirun; libopenmpi-dev: mpi.h and libmpi) so that @rlhf/native builds
# its MPI addon (rlhf_mpi.node) and the data-parallel tests run on 2 ranks. Does nothing when both are present.
# Must run before `npm ci`: the addon is built at install time, and only where mpi.h is found.
set -eu
# mpicc comes with libopenmpi-dev (the headers), mpirun with openmpi-bin.
if command -v mpirun >/dev/null 2>&1 && command -v mpicc >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-openmpi: mpirun or mpi.h is missing and apt-get is not available; install Open MPI (mpirun and its headers) by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends openmpi-bin libopenmpi-dev >/dev/null
mpirun --allow-run-as-root --version | head -1
