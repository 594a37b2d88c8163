#!/usr/bin/env bash
# The sample pieces and harmonizations in samples/: made with the bundled model and fixed seeds,
# then their audio.
#   bash scripts/samples.sh          remake the MIDI files and render them
#   bash scripts/samples.sh audio    only render the MIDI files in samples/ (into samples/audio/)
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python

made() { # NAME, the `python -m composer` command (compose or harmonize), then its arguments
  local name=$1 command=$2 tmp
  shift 2
  tmp=$(mktemp -d)
  "$py" -m composer "$command" "$@" --no-audio --no-picture --out "$tmp" >/dev/null
  mv "$tmp"/*.mid "samples/$name.mid"
  rmdir "$tmp"
  echo "wrote samples/$name.mid"
}

if [[ "${1:-}" != audio ]]; then
  mkdir -p samples
  made chorale compose 120 --style bach --seed 11
  made chorale-in-d-minor compose 120 --style bach --key Dm --tempo 72 --seed 13
  made folk-tune compose 120 --style folk --seed 12
  # Beethoven's Ode to Joy typed as note names, in four voices.
  made ode-to-joy-harmonized harmonize "E4 E F G G F E D C C D E E4. D8 D2 E4 E F G G F E D C C D E D4. C8 C2" \
    --style bach --tempo 96 --seed 21
  # The melody of Bach's chorale BWV 269 (held out of the bundled model's training), read from a
  # MusicXML file with its fermatas: compare with Bach's own harmonization.
  melody=$(mktemp -d)
  "$py" -c "import sys; from music21 import corpus; corpus.parse('bach/bwv269').parts[0].write('musicxml', fp=sys.argv[1])" \
    "$melody/bwv269-soprano.musicxml"
  made bwv269-melody-harmonized harmonize "$melody/bwv269-soprano.musicxml" --style bach --tempo 80 --seed 22
  rm -r "$melody"
  # Twinkle, twinkle, little star as ABC in three voices, in the folk style, on strings.
  made twinkle-in-three-voices harmonize "M:2/4 L:1/8 K:D |D2D2|A2A2|B2B2|A4|G2G2|F2F2|E2E2|D4|]" \
    --voices 3 --style folk --instrument 48 --seed 23
fi
"$py" -m composer render samples/*.mid --out samples/audio
