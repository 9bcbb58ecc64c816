#!/usr/bin/env bash
# Set up (Debian libraries, .venv, the project with all extras) and run the whole test suite.
# Three pytest processes: pure tests, TensorFlow tests and napari/Qt tests under Xvfb, because
# TensorFlow and a napari viewer cannot share a process on software OpenGL.
# The pure and TensorFlow groups run on CELLDENOISE_TEST_WORKERS pytest-xdist workers (default 2,
# one per core; a test file stays on one worker); the Qt group runs serially, as its event-loop stall
# tests measure the viewer alone.
# Exits non-zero when a test fails, and when no test ran at all.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
PY=.venv/bin/python
results=$(mktemp -d)
status=0

run_group() {  # name, marker expression, workers (1: serial), command prefix...
  local name=$1 expr=$2 workers=$3; shift 3
  local xdist=()
  [ "$workers" -gt 1 ] && xdist=(-n "$workers" --dist loadfile)
  echo "=== $name tests (-m \"$expr\", $workers worker(s)) ==="
  "$@" "$PY" -m pytest -m "$expr" "${xdist[@]}" --junitxml="$results/$name.xml" \
    -p no:cacheprovider "${PYTEST_ARGS[@]}"
  local rc=$?
  # 5 = no test selected in this group: fine as long as some group ran tests
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=1; fi
}

PYTEST_ARGS=("$@")
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-xcb}
workers=${CELLDENOISE_TEST_WORKERS:-2}
run_group pure "not qt and not tf" "$workers"
run_group tf "tf and not qt" "$workers"
if [ -n "${DISPLAY:-}" ]; then
  run_group qt "qt" 1
else
  run_group qt "qt" 1 xvfb-run -a -s "-screen 0 1600x1000x24"
fi

"$PY" - "$results" "$status" <<'PYEOF'
import sys, glob, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for f in glob.glob(sys.argv[1] + "/*.xml"):
    for suite in ET.parse(f).getroot().iter("testsuite"):
        n, fl, er, sk = (int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped"))
        failed += fl + er; skipped += sk; passed += n - fl - er - sk
print(f"all tests: {passed} passed, {failed} failed, {skipped} skipped")
if passed + failed == 0:
    print("no test ran", file=sys.stderr); sys.exit(1)
sys.exit(1 if failed or sys.argv[2] != "0" else 0)
PYEOF
