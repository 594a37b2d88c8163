#!/usr/bin/env bash
# The sample pieces in samples/: made with the bundled model and fixed seeds, then their audio.
#   bash scripts/samples.sh          remake the MIDI files and render them
#   bash scripts/samples.sh audio    only render the MIDI files in samples/ (into samples/audio/)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

sample() { # NAME, then the arguments of `python -m composer compose`
  local name=$1 tmp
  shift
  tmp=$(mktemp -d)
  "$py" -m composer compose "$@" --no-audio --no-picture --out "$tmp" >/dev/null
  mv "$tmp"/*.mid "samples/$name.mid"
  rmdir "$tmp"
  echo "wrote samples/$name.mid"
}

if [[ "${1:-}" != audio ]]; then
  mkdir -p samples
  sample chorale 120 --style bach --seed 11
  sample chorale-in-d-minor 120 --style bach --key Dm --tempo 72 --seed 13
  sample folk-tune 120 --style folk --seed 12
fi
"$py" -m composer render samples/*.mid --out samples/audio
