"""BioImage Model Zoo export of N2V models, checked by bioimage.io's own test inference."""

from __future__ import annotations

import numpy as np
import pytest

from napari_celldenoise.cli import main
from napari_celldenoise.deep.api import train
from napari_celldenoise.deep.config import TrainConfig
from napari_celldenoise.deep.export import export_and_check
from napari_celldenoise.deep.model import SAMPLE
from napari_celldenoise.jobs import run

pytestmark = [pytest.mark.tf, pytest.mark.slow]


@pytest.fixture(scope="module")
def n2v_folder(tmp_path_factory, small_noisy):
    folder = tmp_path_factory.mktemp("export") / "model"
    config = TrainConfig(epochs=1, steps=2, patch=32, batch=2, features=8)
    run(train(small_noisy, "YX", config, str(folder)))
    return folder


def test_export_passes_bioimageio_test_inference(n2v_folder, small_noisy, tmp_path):
    assert np.load(n2v_folder / SAMPLE).shape == (32, 32)
    out = tmp_path / "n2v.zip"
    path, report = run(export_and_check(str(n2v_folder), out, image=small_noisy, axes="YX"))
    assert path == str(out) and out.is_file()
    # bioimage.io reran the SavedModel (Keras 3, no legacy switch) with its pre/post-processing
    # and reproduced the test output made by our own prediction
    assert "bioimage.io validation: passed" in report
    assert "passed: Reproduce test outputs" in report
    from napari_celldenoise.deep._bioimageio import import_spec
    from napari_celldenoise.deep.model import ModelFolder

    descr = import_spec().load_description(out)
    info = ModelFolder(n2v_folder).read_info()
    (pre,) = [
        p.kwargs for p in descr.inputs[0].preprocessing if p.id == "fixed_zero_mean_unit_variance"
    ]
    assert pre.mean == pytest.approx(info.mean) and pre.std == pytest.approx(info.std)
    assert [str(a.id) for a in descr.inputs[0].axes] == ["batch", "y", "x", "channel"]
    test_in = np.load(descr.inputs[0].test_tensor.get_reader())
    assert test_in.shape == (1, 96, 96, 1)  # the given image, cut to a multiple of 2**depth


def test_cli_export_default_test_input_and_refusals(n2v_folder, tmp_path, capsys):
    out = tmp_path / "m.zip"
    assert main(["export", str(n2v_folder), "-o", str(out), "--no-check"]) == 0
    assert out.is_file()
    # the 32 x 32 training sample is mirrored to 52 x 52 so that the halo is the whole context
    # a tile needs (24 pixels at depth 2), not what the small sample left (14)
    from napari_celldenoise.deep._bioimageio import import_spec
    from napari_celldenoise.deep.model import ModelFolder

    descr = import_spec().load_description(out)
    overlap = ModelFolder(n2v_folder).read_info().overlap
    assert overlap == 24 and [a.halo for a in descr.outputs[0].axes[1:3]] == [24, 24]
    assert np.load(descr.inputs[0].test_tensor.get_reader()).shape == (1, 52, 52, 1)
    assert main(["export", str(n2v_folder), "-o", str(out), "--no-check"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["export", str(tmp_path), "-o", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a model folder" in err[0]
    assert not (tmp_path / "x.zip").exists()


def test_pg_model_is_refused_in_one_line(tmp_path, small_noisy, capsys):
    folder = tmp_path / "pg"
    config = TrainConfig(method="pg-blindspot", epochs=1, steps=1, patch=32, batch=2, features=8)
    run(train(small_noisy, "YX", config, str(folder)))
    assert main(["export", str(folder), "-o", str(tmp_path / "pg.zip")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only N2V and structN2V" in err[0]


def test_stopped_export_leaves_the_old_package(n2v_folder, small_noisy, tmp_path):
    out = tmp_path / "n2v.zip"
    out.write_bytes(b"old package")
    events = export_and_check(
        str(n2v_folder), out, overwrite=True, image=small_noisy, axes="YX", should_stop=lambda: True
    )
    assert run(events) is None
    assert out.read_bytes() == b"old package"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n2v.zip"]
