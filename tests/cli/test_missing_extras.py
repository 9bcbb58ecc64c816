"""A base install without the deep, cloud and napari extras: every command that needs one exits
2 with one line naming it; the others still work. The extras' modules are hidden from a fresh
interpreter by an import hook, as if they were not installed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.model import ModelFolder, ModelInfo
from napari_celldenoise.extras import EXTRAS
from napari_celldenoise.jobs.specs import save_spec, train_spec

ROOT = Path(__file__).resolve().parents[2]
HIDDEN = sorted({m.split(".")[0] for modules in EXTRAS.values() for m in modules} | {"tensorboard"})

# runs each argv through the CLI's main() in one interpreter whose extras cannot be imported
DRIVER = """
import contextlib, importlib.abc, io, json, sys, traceback

HIDDEN = set(json.loads(sys.argv[1]))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
from napari_celldenoise.cli.main import main

results = []
for argv in json.loads(sys.argv[2]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
        except BaseException:
            traceback.print_exc(file=err)
            code = "traceback"
    results.append([code, err.getvalue()])
print(json.dumps(results))
"""


def _run_base_only(*commands: list[str]) -> list[tuple[object, str]]:
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(HIDDEN), json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=240,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return [tuple(r) for r in json.loads(done.stdout.splitlines()[-1])]


@pytest.mark.slow
def test_commands_that_need_an_extra_name_it_in_one_line(tmp_path):
    image = tmp_path / "in.tif"
    tifffile.imwrite(image, np.random.default_rng(0).poisson(20, (64, 64)).astype(np.uint16))
    model = tmp_path / "model"
    model.mkdir()
    ModelFolder(model).write_info(ModelInfo(train=TrainConfig(), axes="YX"))
    spec = save_spec(
        train_spec(str(image), str(tmp_path / "m2"), TrainConfig()), tmp_path / "t.yaml"
    )
    new_model, out = tmp_path / "m", tmp_path / "out.tif"
    deep = [
        ["train", str(image), "--method", "n2v", "-o", str(new_model)],
        ["predict", str(model), str(image), "-o", str(out)],
        ["export", str(model), "-o", str(tmp_path / "model.zip")],
        ["run", str(spec)],
        ["spots", str(image), "--train-centroid", "mlp", "--centroid-out", str(tmp_path / "c.npz"),
         "-o", str(tmp_path / "s.csv")],
    ]  # fmt: skip
    cloud = [["info", "gs://bucket/stack.tif"]]
    base = [
        ["info", str(image)],
        ["filter", str(image), "-o", str(tmp_path / "f.tif"), "--method", "gaussian"],
    ]
    results = _run_base_only(*deep, *cloud, *base)
    for argv, (code, err) in zip(deep + cloud, results):
        extra = "cloud" if argv[0] == "info" else "deep"
        assert code == 2, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith(f"celldenoise {argv[0]}: error: ")
        assert f'needs the "{extra}" extra' in err
        assert err.rstrip().endswith(f'pip install "napari-celldenoise[{extra}]"'), err
    for argv, (code, err) in zip(base, results[len(deep + cloud) :]):
        assert code == 0, (argv, err)
    # refused before any work
    assert not new_model.exists() and not out.exists() and not (tmp_path / "s.csv").exists()
    assert (tmp_path / "f.tif").is_file()


def test_a_failed_import_of_an_extra_module_is_reported_as_that_extra():
    from napari_celldenoise.cli.errors import one_line, user_error
    from napari_celldenoise.extras import MissingExtra

    exc = user_error(ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow"))
    assert isinstance(exc, MissingExtra) and exc.extra == "deep"
    assert one_line(exc).endswith('pip install "napari-celldenoise[deep]"')
    assert user_error(ModuleNotFoundError("No module named 'x'", name="x")) is None
    assert user_error(RuntimeError("boom")) is None
