#!/bin/sh
# Installs Debian's python3-jinja2 for @rlhf/core's chat-template tests: Python's jinja2 (the engine transformers
# renders chat templates with) is their independent reference. Does nothing when it is present.
set -eu
if /usr/bin/python3 -c 'import jinja2' >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-python-jinja2: /usr/bin/python3 cannot import jinja2 and apt-get is not available; install python3-jinja2 by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-jinja2 >/dev/null
/usr/bin/python3 -c 'import jinja2; print("jinja2", jinja2.__version__)'
