#!/usr/bin/env bash
# Set up (Debian libraries, .venv, the project with all extras) and run the whole test suite.
# Three pytest processes: pure tests, TensorFlow tests and napari/Qt tests under Xvfb, because
# TensorFlow and a napari viewer cannot share a process on software OpenGL.
# Exits non-zero when a test fails, and when no test ran at all.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit 1
PY=.venv/bin/python
results=$(mktemp -d)
status=0

run_group() {  # name, marker expression, extra args...
  local name=$1 expr=$2; shift 2
  echo "=== $name tests (-m \"$expr\") ==="
  "$@" "$PY" -m pytest -m "$expr" --junitxml="$results/$name.xml" -p no:cacheprovider "${PYTEST_ARGS[@]}"
  local rc=$?
  # 5 = no test selected in this group: fine as long as some group ran tests
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=1; fi
}

PYTEST_ARGS=("$@")
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-xcb}
run_group pure "not qt and not tf"
run_group tf "tf and not qt"
if [ -n "${DISPLAY:-}" ]; then
  run_group qt "qt"
else
  run_group qt "qt" xvfb-run -a -s "-screen 0 1600x1000x24"
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
