"""A stand-in ``gcloud`` for the TPU VM tests: checks its argv against the Cloud SDK's flags
and runs the startup script's worker section as a local process (the "TPU VM").

State lives in ``$FAKE_GCLOUD_STATE``: ``calls.jsonl`` (every argv), ``NAME.json`` (a node:
its state and worker pid). A file ``NAME.preempt`` makes the next ``describe`` kill the
node's worker and report ``PREEMPTED``, as Google does to a spot TPU.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ["FAKE_GCLOUD_STATE"])
CREATE = {"--zone", "--accelerator-type", "--version", "--metadata-from-file", "--scopes"}
CREATE_OPTIONAL = {"--spot", "--preemptible", "--labels", "--project"}
COMMON = {"--zone", "--project", "--format", "--quiet"}


def fail(message: str) -> None:
    print(f"ERROR: (gcloud) {message}", file=sys.stderr)
    sys.exit(2)


def flags(args: list[str], allowed: set[str], required: set[str]) -> dict[str, str]:
    found = {}
    for arg in args:
        if not arg.startswith("--"):
            fail(f"unexpected argument {arg!r}")
        name, _, value = arg.partition("=")
        if name not in allowed:
            fail(f"unrecognized arguments: {arg}")
        found[name] = value
    missing = required - set(found)
    if missing:
        fail(f"argument {', '.join(sorted(missing))}: must be specified")
    return found


def node(name: str) -> Path:
    return STATE / f"{name}.json"


def create(name: str, opts: dict[str, str]) -> None:
    if node(name).exists():
        fail(f"ALREADY_EXISTS: node {name}")
    kind, _, script = opts["--metadata-from-file"].partition("=")
    if kind != "startup-script" or not Path(script).is_file():
        fail("--metadata-from-file: startup-script=FILE expected")
    if opts["--scopes"] != "https://www.googleapis.com/auth/cloud-platform":
        fail("--scopes: the worker needs cloud-platform")
    text = Path(script).read_text()
    worker = text.split("# --- worker ---", 1)[1].split("# --- end ---", 1)[0]
    shim = STATE / "celldenoise"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m napari_celldenoise.cli "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "CELLDENOISE": str(shim), "CELLDENOISE_LOG": str(STATE / f"{name}.log")}
    proc = subprocess.Popen(
        ["bash", "-c", worker],
        env=env,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    node(name).write_text(json.dumps({"state": "READY", "pid": proc.pid, **opts}))


def kill(name: str) -> None:
    info = json.loads(node(name).read_text())
    try:
        os.killpg(info["pid"], signal.SIGKILL)
    except ProcessLookupError:
        pass


def main(argv: list[str]) -> None:
    STATE.mkdir(parents=True, exist_ok=True)
    with open(STATE / "calls.jsonl", "a") as log:
        log.write(json.dumps(argv) + "\n")
    if argv[:3] == ["config", "get-value", "account"]:
        print("microscopist@example.org")
        return
    if argv[:3] != ["compute", "tpus", "tpu-vm"] or len(argv) < 5:
        fail(f"unknown command {' '.join(argv)}")
    verb, name, rest = argv[3], argv[4], argv[5:]
    if verb == "create":
        create(name, flags(rest, CREATE | CREATE_OPTIONAL, CREATE))
    elif verb == "describe":
        flags(rest, COMMON, {"--zone"})
        if not node(name).exists():
            fail(f"NOT_FOUND: node {name} was not found")
        info = json.loads(node(name).read_text())
        if (STATE / f"{name}.preempt").exists():
            (STATE / f"{name}.preempt").unlink()
            kill(name)
            info["state"] = "PREEMPTED"
            node(name).write_text(json.dumps(info))
        print(json.dumps({"name": name, "state": info["state"]}))
    elif verb == "delete":
        flags(rest, COMMON, {"--zone", "--quiet"})
        if not node(name).exists():
            fail(f"NOT_FOUND: node {name} was not found")
        kill(name)
        node(name).unlink()
    else:
        fail(f"unknown verb {verb}")


if __name__ == "__main__":
    main(sys.argv[1:])
