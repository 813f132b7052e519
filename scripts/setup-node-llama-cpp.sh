#!/bin/sh
# Installs llama.cpp through node-llama-cpp 3.21.1 (pinned: newer releases name builds that the registry does not
# serve for every platform), outside the repository, for @rlhf/core's GGUF export test: the exported file is
# loaded by llama.cpp itself and must give our model's tokens and log-probabilities. Only this platform's prebuilt
# binaries are installed (about 80 MB; the package's optional CUDA/Vulkan builds are left out) and no install
# script runs (nothing is compiled). Does nothing when it is already there.
# Where: $RLHF_NODE_LLAMA_CPP_DIR, default ~/.cache/rlhf-ts/node-llama-cpp-3.21.1 (the test looks there too).
set -eu
VERSION=3.21.1
DIR="${RLHF_NODE_LLAMA_CPP_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/rlhf-ts/node-llama-cpp-$VERSION}"
if [ -f "$DIR/node_modules/node-llama-cpp/package.json" ]; then exit 0; fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) PLATFORM=linux-x64 ;;
  Linux-aarch64) PLATFORM=linux-arm64 ;;
  Darwin-arm64) PLATFORM=mac-arm64-metal ;;
  Darwin-x86_64) PLATFORM=mac-x64 ;;
  *) echo "setup-node-llama-cpp: no prebuilt llama.cpp for $(uname -s) $(uname -m)" >&2; exit 1 ;;
esac
mkdir -p "$DIR"
printf '{ "name": "rlhf-ts-llama-cpp-peer", "private": true }\n' > "$DIR/package.json"
npm install --prefix "$DIR" --omit=optional --ignore-scripts --no-audit --no-fund --loglevel=error \
  "node-llama-cpp@$VERSION" "@node-llama-cpp/$PLATFORM@$VERSION" >/dev/null
echo "setup-node-llama-cpp: node-llama-cpp $VERSION ($PLATFORM) in $DIR"
