#!/usr/bin/env bash
# The electron-microscopy walk-through on a real image (default: the MoS2 .dm3 in
# ../shared/data/em/): lattice overlay, CycleGAN with the auto target, Stop inside epoch 3,
# Continue, Denoise; four screenshots and em-demo.json in /tmp/em-demo/ (EM_DEMO_OUT).
# Runs under Xvfb when there is no display. PYTHON picks the interpreter (default .venv, set up
# by bootstrap.sh when missing). Small settings: a few minutes on two CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-../shared/data/em/example_Se_implanted_MoS2.dm3}
OUT=${EM_DEMO_OUT:-/tmp/em-demo}
if [ -z "${PYTHON:-}" ]; then
  [ -x .venv/bin/python ] || bash scripts/bootstrap.sh
  PYTHON=.venv/bin/python
fi
shift $(( $# > 0 ? 1 : 0 ))
if [ -n "${DISPLAY:-}" ] && [ "${CELLDENOISE_HEADLESS:-0}" != 1 ]; then
  exec "$PYTHON" -m napari_celldenoise._qt.em_demo "$IMAGE" --out "$OUT" "$@"
fi
exec xvfb-run -a -s "-screen 0 1600x1000x24" \
  "$PYTHON" -m napari_celldenoise._qt.em_demo "$IMAGE" --out "$OUT" "$@"
