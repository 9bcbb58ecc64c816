#!/usr/bin/env bash
# Set up (Debian libraries, .venv, the project with all extras) and open napari with the
# sample data and every CellDenoise dock. With no display it runs the same workflow under Xvfb,
# writes screenshots and results to demo-output/ and prints where they are.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ -n "${DISPLAY:-}" ] && [ "${CELLDENOISE_HEADLESS:-0}" != 1 ]; then
  exec .venv/bin/python -m napari_celldenoise._qt.demo "$@"
fi
exec xvfb-run -a -s "-screen 0 1600x1000x24" \
  .venv/bin/python -m napari_celldenoise._qt.demo --headless --out demo-output "$@"
