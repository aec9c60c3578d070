#!/usr/bin/env bash
# Installs moto's S3-compatible server (PyPI `moto[server]`, pinned) into a
# virtualenv and prints the absolute path of its `moto_server` binary on
# stdout (progress goes to stderr). Idempotent: a venv that already has the
# pinned version is reused without touching the network.
#
#   MOTO_SERVER="$(bash .ci/install-moto.sh)"
#
# The venv lives at ${STORAGE_CI_VENV:-$HOME/.cache/storage-ci/venv}.
set -euo pipefail

MOTO_VERSION="5.2.5"
VENV="${STORAGE_CI_VENV:-$HOME/.cache/storage-ci/venv}"
BIN="$VENV/bin/moto_server"

installed_version() {
  "$VENV/bin/python" - <<'PY' 2>/dev/null || true
import importlib.metadata as m
print(m.version("moto"))
PY
}

if [ -x "$BIN" ] && [ "$(installed_version)" = "$MOTO_VERSION" ]; then
  cd "$(dirname "$BIN")" && echo "$(pwd -P)/moto_server"
  exit 0
fi

command -v python3 >/dev/null 2>&1 || { echo "error: python3 is not installed" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv "$VENV" >&2; then
    # Debian splits venv support out of python3.
    echo "python3 -m venv failed; installing python3-venv" >&2
    rm -rf "$VENV"
    apt-get update -qq >&2 && apt-get install -y -qq python3-venv >&2
    python3 -m venv "$VENV" >&2
  fi
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  "moto[server]==$MOTO_VERSION" >&2

if [ ! -x "$BIN" ]; then
  echo "error: $BIN missing after installing moto[server]==$MOTO_VERSION" >&2
  exit 1
fi
cd "$(dirname "$BIN")" && echo "$(pwd -P)/moto_server"
