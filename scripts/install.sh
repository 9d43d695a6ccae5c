#!/usr/bin/env bash
# Install everything jamgen needs into .venv: Debian's ffmpeg and libopus0 (when missing and we are root),
# the pinned Python packages, audiocraft (tts-webui-audiocraft, --no-deps) and jamgen itself.
# Idempotent: a second run checks a hash of the inputs and returns at once.
# Used by `make run`, `make test`, .ci/run and the Dockerfile: one recipe, no drift.
#   scripts/install.sh [--dev]     --dev adds pytest, hypothesis, ruff and mypy
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${JAMGEN_VENV:-.venv}
PYTHON=${PYTHON:-python3}
DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

say() { printf 'install: %s\n' "$*" >&2; }

# Debian packages: ffmpeg (decoding, MP3s) and libopus0 (discord.py's voice encodes Opus with it).
debs=()
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then
  debs+=(ffmpeg)
fi
if ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libopus\.so\.0'; then
  debs+=(libopus0)
fi
# The tests' fake Discord serves voice over TLS with a throwaway certificate made by the openssl CLI.
if [ "$DEV" = "1" ] && ! command -v openssl >/dev/null 2>&1; then
  debs+=(openssl)
fi
if [ "${#debs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's ${debs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${debs[@]}" >/dev/null
  else
    say "${debs[*]} missing. Install first, e.g.: sudo apt-get install -y ${debs[*]}"
    exit 1
  fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "jamgen needs Python 3.11 or newer; $PYTHON is $("$PYTHON" --version 2>&1)"
  exit 1
fi

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
runtime_hash=$(hash_of requirements/runtime.txt pyproject.toml scripts/install.sh)
dev_hash=$(hash_of requirements/dev.txt requirements/ray.txt)
up_to_date() { [ -f "$VENV/.jamgen-$1" ] && [ "$(cat "$VENV/.jamgen-$1")" = "$2" ]; }
if up_to_date runtime "$runtime_hash" && { [ "$DEV" = 0 ] || up_to_date dev "$dev_hash"; }; then
  exit 0
fi

[ -x "$VENV/bin/python" ] || { say "creating $VENV"; "$PYTHON" -m venv "$VENV"; }
pip=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
# Some machines list local package folders that do not exist; pip warns once per package.
quiet_pip() { "${pip[@]}" "$@" 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2); }
say "installing pinned packages (torch 2.11.0 is about 4.6 GB; the first time takes a few minutes)"
if ! up_to_date runtime "$runtime_hash"; then
  quiet_pip -r requirements/runtime.txt
  quiet_pip --no-deps tts-webui-audiocraft==1.4.0a2
  quiet_pip --no-deps --no-build-isolation -e .
  echo "$runtime_hash" > "$VENV/.jamgen-runtime"
fi
if [ "$DEV" = 1 ] && ! up_to_date dev "$dev_hash"; then
  quiet_pip -r requirements/dev.txt -c requirements/runtime.txt
  echo "$dev_hash" > "$VENV/.jamgen-dev"
fi
say "done: $VENV is ready"
