"""Model folders and configs under bad files: one clear line before any work starts.

Folders are made here by hand (the info YAML through the real config classes, weights as a
real HDF5 file), so the suite needs no training; the intact folder passes every check, so each
fault below is what trips it.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import tifffile
import yaml

from napari_celldenoise.cli.main import main
from napari_celldenoise.config import ConfigError
from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.model import (
    BEST,
    HISTORY,
    INFO,
    LAST,
    N2V_CONFIG,
    NOISE,
    OPTIMIZER,
    ModelFolder,
    ModelFolderError,
    ModelInfo,
    prepare_new_folder,
)

h5py = pytest.importorskip("h5py")


def _weights(path: Path) -> None:
    with h5py.File(path, "w") as h5:
        layer = h5.create_group("conv_1")
        layer.create_dataset("kernel", data=np.ones((3, 3, 1, 8), np.float32))
        h5.attrs["layer_names"] = [b"conv_1"]


def make_folder(root: Path, *, vst: bool = True) -> Path:
    """A complete N2V model folder (as training leaves it), without training."""
    folder = ModelFolder(root / "model")
    folder.path.mkdir()
    folder.write_info(ModelInfo(train=TrainConfig(vst=vst), axes="YX", epochs_done=2))
    _weights(folder.file(BEST))
    _weights(folder.file(LAST))
    folder.write_noise(0.5, 4.0)
    folder.write_history([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.4}])
    folder.write_json(N2V_CONFIG, {"n2v_patch_shape": [32, 32], "unet_n_depth": 2})
    folder.write_json("calibration.json", {BEST: [1.0, 0.0]})
    return folder.path


@pytest.fixture
def folder(tmp_path) -> Path:
    return make_folder(tmp_path)


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in.tif"
    tifffile.imwrite(path, np.random.default_rng(0).normal(100, 5, (64, 64)).astype(np.float32))
    return path


def test_the_intact_folder_passes_every_check(folder):
    m = ModelFolder(folder)
    assert m.read_info().epochs_done == 2
    assert m.weights("best").name == BEST and m.weights("last").name == LAST
    assert m.read_noise() == {"a": 0.5, "b": 4.0}
    assert len(m.read_history()) == 2
    assert prepare_new_folder(folder, resume=True).path == folder


def _truncate(path: Path, keep: float = 0.5) -> None:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])


def _set_info(folder: Path, **changes) -> None:
    data = yaml.safe_load((folder / INFO).read_text())
    for key, value in changes.items():
        where = data
        *parents, last = key.split(".")
        for p in parents:
            where = where[p]
        where[last] = value
    (folder / INFO).write_text(yaml.safe_dump(data))


def _damage(name: str, folder: Path) -> None:
    """Apply the fault ``name`` to ``folder``."""
    if name == "truncated best weights":
        _truncate(folder / BEST)
    elif name == "weights that are not HDF5":
        (folder / BEST).write_bytes(b"<html>404 Not Found</html>")
    elif name == "empty weights":
        (folder / BEST).write_bytes(b"")
    elif name == "no weights":
        (folder / BEST).unlink()
        (folder / LAST).unlink()
    elif name == "info from a newer version":
        _set_info(folder, version=7)
    elif name == "train config from a newer version":
        _set_info(folder, **{"train.version": 3})
    elif name == "wrong types in the info":
        _set_info(folder, epochs_done="many", std=-1)
    elif name == "unknown key in the info":
        _set_info(folder, future_setting=True)
    elif name == "info that is not YAML":
        (folder / INFO).write_bytes(b"\x00\xff\xfe garbage: [unclosed")
    elif name == "info that is a list":
        (folder / INFO).write_text("- 1\n- 2\n")
    elif name == "truncated info":
        _truncate(folder / INFO, 0.3)
    elif name == "garbage noise":
        (folder / NOISE).write_text("a: lots\nb: [1, 2]\n")
    elif name == "noise without b":
        (folder / NOISE).write_text("a: 0.5\n")
    elif name == "vst model without noise":
        (folder / NOISE).unlink()
    elif name == "truncated network description":
        _truncate(folder / N2V_CONFIG)
    elif name == "missing network description":
        (folder / N2V_CONFIG).unlink()
    elif name == "garbage calibration":
        (folder / "calibration.json").write_text('{"weights_best.h5": "steep"}')
    else:  # pragma: no cover
        raise AssertionError(name)


FAULTS = {
    "truncated best weights": "damaged weights file",
    "weights that are not HDF5": "not a Keras weights file",
    "empty weights": "not a Keras weights file",
    "no weights": "no trained weights",
    "info from a newer version": "newer than this plugin supports",
    "train config from a newer version": "newer than this plugin supports",
    "wrong types in the info": "epochs_done",
    "unknown key in the info": "future_setting",
    "info that is not YAML": "not a readable YAML file",
    "info that is a list": "expected a mapping",
    "truncated info": INFO,
    "garbage noise": "damaged noise parameters",
    "noise without b": "needs finite a and b",
    "vst model without noise": "without noise.yaml",
    "truncated network description": "n2v_config.json: damaged",
    "missing network description": "n2v_config.json: missing",
    "garbage calibration": "not output calibration lines",
}


def _one_line_exit_2(args, capsys) -> str:
    before = "tensorflow" in sys.modules
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    if not before:  # the check came before any TensorFlow work
        assert "tensorflow" not in sys.modules
    return err


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_damaged_model_folder_is_one_line_before_predicting(fault, folder, image, capsys):
    _damage(fault, folder)
    out = image.parent / "out.ome.tif"
    err = _one_line_exit_2(["predict", str(folder), str(image), "-o", str(out)], capsys)
    assert FAULTS[fault] in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    "fault", ["truncated best weights", "info from a newer version", "garbage noise"]
)
def test_a_damaged_model_folder_is_one_line_before_continuing_or_exporting(
    fault, folder, image, capsys
):
    _damage(fault, folder)
    if fault == "truncated best weights":  # continuing reads the last weights
        _truncate(folder / LAST)
    err = _one_line_exit_2(
        ["train", str(image), "--method", "n2v", "-o", str(folder), "--resume", "--epochs", "1"],
        capsys,
    )
    assert FAULTS[fault] in err, err
    out = folder.parent / "package.zip"
    err = _one_line_exit_2(["export", str(folder), "-o", str(out)], capsys)
    assert FAULTS[fault] in err, err
    assert not out.exists()


def test_damaged_history_stops_a_continued_training_but_not_a_prediction(folder, image, capsys):
    _truncate(folder / HISTORY)
    ModelFolder(folder).read_info()  # prediction does not read it
    err = _one_line_exit_2(
        ["train", str(image), "--method", "n2v", "-o", str(folder), "--resume", "--epochs", "1"],
        capsys,
    )
    assert "history.json: damaged" in err


def _bioimageio_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("rdf.yaml", "format_version: 0.5.3\ntype: model\nname: someone's model\n")
        z.writestr("weights.h5", b"\x89HDF\r\n\x1a\n")
    return path


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("bioimage.io zip", "a BioImage Model Zoo package"),
        ("bioimage.io folder", "an unpacked BioImage Model Zoo package"),
        ("CAREamics folder", "a CAREamics model folder"),
        ("n2v folder", "an n2v / CSBDeep model folder"),
        ("empty folder", "not a model folder (no celldenoise.yaml)"),
        ("a TIFF", "a file, not a model folder"),
        ("missing", "no such model folder"),
    ],
)
def test_another_tools_model_is_named_in_one_line(kind, expected, tmp_path, image, capsys):
    path = tmp_path / "other"
    if kind == "bioimage.io zip":
        path = _bioimageio_zip(tmp_path / "model.zip")
    elif kind == "a TIFF":
        path = image
    elif kind != "missing":
        path.mkdir()
    if kind == "bioimage.io folder":
        (path / "rdf.yaml").write_text("type: model\n")
    elif kind == "CAREamics folder":
        (path / "careamics.yaml").write_text("algorithm_config: {}\n")
        (path / "last.ckpt").write_bytes(b"PK\x03\x04")
    elif kind == "n2v folder":
        (path / "config.json").write_text("{}")
        _weights(path / BEST)
    out = tmp_path / "out.ome.tif"
    err = _one_line_exit_2(["predict", str(path), str(image), "-o", str(out)], capsys)
    assert expected in err, err
    assert not out.exists()


def _untrained_net():
    """What restore_optimizer touches of a Keras model before it reads the file (no TF)."""
    optimizer = SimpleNamespace(build=lambda _variables: None, variables=[])
    return SimpleNamespace(optimizer=optimizer, trainable_variables=[])


def test_a_damaged_optimizer_state_falls_back_to_fresh_moments(folder):
    (folder / OPTIMIZER).write_bytes(b"PK\x03\x04 truncated")

    message = ModelFolder(folder).restore_optimizer(_untrained_net())
    assert "damaged" in message and "fresh" in message


def test_npz_files_with_pickles_are_refused(tmp_path):
    """The project's .npz readers (centroid models, optimizer state) never unpickle."""
    from napari_celldenoise.spots.centroid import CentroidModel

    class Marker:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    path = tmp_path / "model.npz"
    hook = np.empty(1, dtype=object)
    hook[0] = Marker()
    np.savez(path, meta=np.array(["ridge", "7", "[]"]), w0=hook)
    with pytest.raises(ValueError, match="not a centroid model.*allow_pickle"):
        CentroidModel.load(path)
    (folder := tmp_path / "m").mkdir()
    np.savez(folder / OPTIMIZER, v0000=hook)

    assert "damaged" in ModelFolder(folder).restore_optimizer(_untrained_net())
    assert not (tmp_path / "pwned").exists()


def test_yaml_loaders_are_safe(tmp_path):
    """A YAML tag that would build a Python object is a clear config error, nothing built."""
    marker = tmp_path / "pwned"
    path = tmp_path / "config.yaml"
    path.write_text(f"!!python/object/apply:builtins.open [{str(marker)!r}, 'w']\n")
    with pytest.raises(ConfigError, match="not a readable YAML file"):
        TrainConfig.from_yaml(path)
    folder = make_folder(tmp_path)
    (folder / NOISE).write_text(path.read_text())
    with pytest.raises(ModelFolderError, match="damaged noise"):
        ModelFolder(folder).read_noise()
    from napari_celldenoise.spots.classify import RuleSet

    with pytest.raises(ValueError, match="not a readable rule file"):
        RuleSet.load(path)
    assert not marker.exists()


def test_no_unsafe_loader_in_the_package():
    """No pickle, unsafe YAML, eval or saved Keras architecture outside the trusted path."""
    root = Path(__file__).resolve().parents[2] / "src" / "napari_celldenoise"
    unsafe = (
        "yaml.load(",
        "yaml.unsafe_load",
        "yaml.full_load",
        "Loader=yaml.Loader",
        "UnsafeLoader",
        "allow_pickle=True",
        "pickle.load",
        "torch.load",
        "load_model(",
        "model_from_json",
        "model_from_yaml",
        "eval(",
        "exec(",
    )
    hits = []
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        hits += [f"{path.relative_to(root)}: {u}" for u in unsafe if u in text]
    assert hits == []
    joblib_users = [p.name for p in root.rglob("*.py") if "joblib.load" in p.read_text()]
    assert joblib_users == ["classifier_file.py"]  # behind the trust check only
    assert "json.loads" in (root / "deep" / "model.py").read_text()
    # Keras weights go into networks this package builds (n2v's own builder, pg.py's UNet)
    for name in ("n2v.py", "pg.py"):
        assert "load_weights(" in (root / "deep" / name).read_text()
