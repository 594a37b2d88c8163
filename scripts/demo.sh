#!/usr/bin/env bash
# Set up everything, then compose a 500-event piece with the bundled model into ./out.
# Extra arguments go to `python -m composer compose`, e.g. `bash scripts/demo.sh 300 --key Am`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m composer compose "${@:-500}" --out out
