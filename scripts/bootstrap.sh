#!/usr/bin/env bash
# Set up everything napari-celldenoise needs on a fresh Debian machine with Python 3.11:
# the Debian libraries for headless Qt/OpenGL (Xvfb + Mesa), a virtual environment in .venv
# and the project with all its extras. Safe to run again: it skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(xvfb xauth libgl1-mesa-dri libgl1 libegl1 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
      libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0
      libxcb-xinput0 libxcb-xfixes0 libxcb-shape0 libdbus-1-3 libfontconfig1 x11-utils)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
[ -x .venv/bin/python ] || "$PY" -m venv .venv
stamp=.venv/.celldenoise-installed
want=$(cat pyproject.toml scripts/constraints.txt | sha1sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] installing the project and its extras into .venv (a few minutes the first time)" >&2
  log=.venv/pip-install.log
  if ! { .venv/bin/python -m pip install -q --upgrade pip &&
         .venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[dev]"; } >"$log" 2>&1; then
    grep -v "^WARNING: Location" "$log" | tail -30 >&2
    echo "[setup] pip install failed; full log in $log" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
