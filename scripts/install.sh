#!/usr/bin/env bash
# Install everything Cadenza needs on Debian or Ubuntu: FluidSynth with a General MIDI SoundFont
# and Redis for the job queue of composition workers (apt), then a virtual environment in .venv
# with the package and its test tools (pip). Cadenza needs Python 3.11 or newer: the first of
# $PYTHON, python3, python3.13, python3.12, python3.11 that is new enough builds the environment.
# Safe to run again: it skips what is already there, and builds .venv again when the Python in it
# is broken or too old (made by an older Python, or an install that stopped half-way).
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
new_enough='import sys; sys.exit(sys.version_info < (3, 11))'

# The Python to build .venv with: $PYTHON if set, else the first new enough one on the PATH.
pick_python() {
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
    return
  fi
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && "$candidate" -c "$new_enough" 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  echo python3
}

need=()
command -v fluidsynth >/dev/null || need+=(fluidsynth)
[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || need+=(fluid-soundfont-gm)
command -v redis-server >/dev/null || need+=(redis-server)
# libopus: the Ogg Opus encoder (composer/render/opus.py) and voice channels (discord.py encodes with
# it); PyNaCl and davey come from pip.
/sbin/ldconfig -p 2>/dev/null | grep -q 'libopus\.so\.0' || need+=(libopus0)
# Freedoom's game music (BSD): real-world General MIDI files for the tests and `--corpus freedoom`.
[ -e /usr/share/games/doom/freedoom2.wad ] || need+=(freedoom)
command -v python3 >/dev/null || [ -n "${PYTHON:-}" ] || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  echo "Installing ${need[*]} with apt-get..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

python=$(pick_python)
if ! command -v "$python" >/dev/null; then
  echo "error: $python (from PYTHON) was not found." >&2
  exit 2
fi
if ! "$python" -c "$new_enough" 2>/dev/null; then
  found=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || echo "unknown")
  echo "error: Cadenza needs Python 3.11 or newer, and $python is Python $found. Install a newer one" \
    "(Ubuntu 22.04: sudo apt-get install python3.11 python3.11-venv) and run this again, or point" \
    "PYTHON at it: PYTHON=/usr/bin/python3.11 bash $0" >&2
  exit 2
fi
if ! "$python" -c "import venv, ensurepip" 2>/dev/null; then
  version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  echo "Installing python$version-venv with apt-get..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "python$version-venv" >/dev/null
fi

# A .venv whose Python no longer runs, is older than 3.11 or has no pip is built again.
if [ -e .venv ] && ! { .venv/bin/python -c "$new_enough" && .venv/bin/python -m pip --version; } >/dev/null 2>&1
then
  echo "The Python environment in .venv is broken or older than Python 3.11; building it again..."
  rm -rf .venv
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.installed
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "Installing Python packages into .venv (the first time takes a few minutes)..."
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  touch "$stamp"
fi
