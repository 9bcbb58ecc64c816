"""Job specs: saved and loaded with their version check, run by run_spec, recorded in every
output file and read back from it, replayed through the CLI with the same result."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from napari_celldenoise.classical.apply import denoise_job, noise_info
from napari_celldenoise.cli import main
from napari_celldenoise.config import ConfigError
from napari_celldenoise.deep.config import PredictConfig, TrainConfig
from napari_celldenoise.io import ImageData, read_image, write_ome_tiff
from napari_celldenoise.io.spots_csv import HEADER, read_spots_csv, write_spots_csv
from napari_celldenoise.jobs import run, run_in_process
from napari_celldenoise.jobs.provenance import history_of, spec_of
from napari_celldenoise.jobs.run_spec import run_spec
from napari_celldenoise.jobs.specs import (
    KINDS,
    CentroidTraining,
    ClassicalConfig,
    ExportSpec,
    FilterSpec,
    InputSpec,
    NoiseConfig,
    ReadSpec,
    SpecError,
    SpotsSpec,
    add_noise_spec,
    classical_spec,
    load_spec,
    parse_spec,
    predict_spec,
    save_spec,
    spots_spec,
    train_spec,
)
from napari_celldenoise.spots.config import SpotsConfig
from napari_celldenoise.spots.simulate import simulate_spots

UM = {"Y": "µm", "X": "µm"}


@pytest.fixture
def noisy(tmp_path):
    """A calibrated (65 nm) TYX stack of Poisson noise on a ramp, as OME-TIFF."""
    rng = np.random.default_rng(0)
    ramp = np.linspace(20, 80, 40)[None, None, :] * np.ones((3, 36, 40))
    data = (rng.poisson(ramp) + 100).astype(np.uint16)
    path = tmp_path / "noisy.ome.tif"
    write_ome_tiff(path, ImageData(data, "TYX", scale={"Y": 0.065, "X": 0.065}, units=UM))
    return str(path)


@pytest.fixture
def frames(tmp_path):
    """Simulated camera frames of spots (100 nm pixels)."""
    data, _ = simulate_spots(2, (48, 48), n_spots=8, seed=1)
    path = tmp_path / "frames.ome.tif"
    write_ome_tiff(path, ImageData(data, "TYX", scale={"Y": 0.1, "X": 0.1}, units=UM))
    return str(path)


def _examples(tmp_path) -> list:
    img, out = str(tmp_path / "in.tif"), str(tmp_path / "out.ome.tif")
    return [
        ReadSpec(input=InputSpec(path=img, axes="ZYX"), output=out),
        classical_spec(img, out, "nlm", {"h": 3.0}, three_d=True, vst=True, noise=(1.5, 4.0)),
        add_noise_spec(img, out, NoiseConfig(noise="gaussian", sigma=2.0, seed=3), axes="YX"),
        train_spec(img, str(tmp_path / "model"), TrainConfig(method="pg-blindspot"), channel=1),
        predict_spec(str(tmp_path / "model"), img, out, PredictConfig(tile=128, tta=False)),
        SpotsSpec(
            input=InputSpec(path=img, channel=0),
            config=SpotsConfig(fit="lsq", box=9),
            classify="rules.yaml",
            train_centroid=CentroidTraining(kind="ridge", output="c.npz"),
            output=str(tmp_path / "o.csv"),
        ),
        ExportSpec(model=str(tmp_path / "model"), output="m.zip", authors=("A. Author",)),
    ]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_every_kind_saves_and_loads_as_the_same_spec(tmp_path, suffix):
    specs = _examples(tmp_path)
    assert [s.kind for s in specs] == [*KINDS]
    for spec in specs:
        path = save_spec(spec, tmp_path / f"{spec.kind}{suffix}")
        loaded = load_spec(path)
        assert type(loaded) is type(spec) and loaded == spec
        assert parse_spec(spec.to_json()) == spec  # the JSON a remote job folder holds


def test_a_spec_from_a_newer_version_or_of_an_unknown_kind_is_refused_naming_the_file(tmp_path):
    data = _examples(tmp_path)[1].to_dict()
    path = tmp_path / "newer.yaml"
    path.write_text(json.dumps({**data, "version": 7}))
    with pytest.raises(ConfigError, match=r"newer.yaml: version: config version 7 is newer"):
        load_spec(path)
    path.write_text(json.dumps({**data, "config": {**data["config"], "version": 3}}))
    with pytest.raises(ConfigError, match="config.version: config version 3 is newer"):
        load_spec(path)
    path.write_text(json.dumps({**data, "kind": "paint"}))
    with pytest.raises(ConfigError, match="kind: 'paint' is not one of read, filter"):
        load_spec(path)
    path.write_text(json.dumps({**data, "config": {"method": "nlm", "params": {"h": -1}}}))
    with pytest.raises(ConfigError, match=r"config.params: h=-1 is out of range"):
        load_spec(path)


def test_a_noise_config_needs_its_kinds_settings_and_replays_the_same_noise():
    with pytest.raises(ValueError, match="gaussian noise needs sigma"):
        NoiseConfig(noise="gaussian")
    with pytest.raises(ValueError, match="poisson-gaussian noise needs a"):
        NoiseConfig(noise="poisson-gaussian", b=2.0)
    with pytest.raises(ValueError, match="less than or equal to 1"):
        NoiseConfig(noise="salt-pepper", amount=1.5)
    image = np.full((2, 16, 16), 50, np.uint16)
    config = NoiseConfig(noise="poisson-gaussian", a=2.0, b=1.0, seed=4)
    first, again = config.apply(image), config.apply(image)
    assert first.dtype == np.float32 and np.array_equal(first, again)
    assert abs(float(first.var()) - (2.0 * 50 + 1.0)) < 15  # variance = a * mean + b
    with pytest.raises(ValueError, match="non-negative"):
        config.apply(-image.astype(np.float32))
    kept = NoiseConfig(noise="salt-pepper", amount=0.5, keep_dtype=True, seed=1).apply(image)
    assert kept.dtype == np.uint16 and set(np.unique(kept)) <= {0, 50, 65535}


def test_classical_config_checks_and_types_the_parameters():
    config = ClassicalConfig(method="gaussian", params={"sigma": "2"})  # text from a CLI
    assert config.params == {"sigma": 2.0}
    with pytest.raises(ValueError, match="unknown parameter 'h' for gaussian"):
        ClassicalConfig(method="gaussian", params={"h": 1})
    with pytest.raises(ValueError, match="both noise_a and noise_b"):
        ClassicalConfig(method="gaussian", vst=True, noise_a=1.0)
    with pytest.raises(ValueError, match="auto-tune chooses sigma"):
        ClassicalConfig(method="gaussian", params={"sigma": 1}, auto_tune=True)


def test_a_filtered_file_carries_its_spec_and_keeps_its_pixel_size(tmp_path, noisy):
    out = str(tmp_path / "smooth.ome.tif")
    args = ["filter", noisy, "-o", out, "--method", "gaussian", "--param", "sigma=1.5", "-q"]
    assert main(args) == 0
    spec = spec_of(out)
    assert isinstance(spec, FilterSpec)
    assert spec.input.path == noisy and spec.output == out
    assert spec.config.method == "gaussian" and spec.config.params == {"sigma": 1.5}
    image = read_image(out)
    assert image.scale["X"] == pytest.approx(0.065) and image.units["X"] == "µm"
    assert image.axes == "TYX"
    # the spec read back from the file, run again, makes the same pixels
    again = spec.model_copy(update={"output": str(tmp_path / "again.ome.tif")})
    run(run_spec(again))
    assert np.array_equal(read_image(again.output).data, image.data)
    assert spec_of(noisy) is None  # the raw input was made by no job


def test_a_spot_table_of_a_filtered_image_holds_the_whole_chain(tmp_path, frames):
    smooth, table = str(tmp_path / "smooth.ome.tif"), str(tmp_path / "spots.csv")
    assert main(["filter", frames, "-o", smooth, "--method", "median", "-q"]) == 0
    assert main(["spots", smooth, "-o", table, "--fit", "lsq", "-q"]) == 0
    chain = history_of(table)
    assert [s.kind for s in chain] == ["filter", "spots"]
    assert chain[0] == spec_of(smooth) and chain[1] == spec_of(table)
    assert chain[1].input.path == smooth and chain[1].config.fit == "lsq"
    # the CSV itself is unchanged: one header line as ThunderSTORM reads it, then rows
    with open(table, encoding="utf-8") as fh:
        assert fh.readline().strip().split(",")[: len(HEADER)] == HEADER
    assert len(read_spots_csv(table)) > 0


def test_a_table_written_again_without_a_spec_loses_the_old_one(tmp_path, frames):
    out = str(tmp_path / "o.csv")
    spec = spots_spec(frames, out, SpotsConfig(pixel_size=100.0))
    result = run(run_spec(spec))
    assert spec_of(out) == spec and result.pixel_size == 100.0
    write_spots_csv(out, result.read_table(), overwrite=True)  # e.g. edited in napari
    assert spec_of(out) is None


def test_the_docks_classical_spec_gives_what_the_dock_computes(tmp_path, noisy):
    """The Classical dock filters the layer with denoise_job (its noise estimate, its VST);
    the spec it records, run through ``celldenoise run``, writes the same pixels."""
    image = read_image(noisy)
    params = {"weight": 0.8}
    info = noise_info(image.data, image.axes, vst=True)
    docked = run(
        denoise_job(
            image.data, image.axes, "tv", params, vst=info.gat, scale=image.scale, noise=info
        )
    )
    gat = info.gat
    out = str(tmp_path / "replayed.ome.tif")
    spec = classical_spec(noisy, out, "tv", params, vst=True, noise=(gat.a, gat.b))
    saved = save_spec(spec, tmp_path / "dock.yaml")
    assert main(["run", str(saved), "-q"]) == 0
    replayed = read_image(out)
    assert replayed.data.dtype == docked.dtype
    assert np.array_equal(replayed.data, docked)
    assert spec_of(out) == spec


def test_run_reads_another_input_and_refuses_a_bad_spec(tmp_path, noisy, capsys):
    spec = classical_spec("elsewhere.tif", str(tmp_path / "a.ome.tif"), "median", {})
    saved = save_spec(spec, tmp_path / "s.json")
    assert main(["run", str(saved), "-q", "--input", noisy]) == 0
    assert spec_of(tmp_path / "a.ome.tif").input.path == noisy
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: filter\ninput: {path: x.tif}\noutput: o.tif\n")
    assert main(["run", str(bad)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["celldenoise run: error: " + f"{bad}: config: Field required"]


def test_a_channel_is_chosen_or_refused_in_one_line(tmp_path):
    two = tmp_path / "two.ome.tif"
    data = np.stack([np.zeros((16, 16), np.uint16), np.full((16, 16), 7, np.uint16)])
    tifffile.imwrite(two, data, ome=True, metadata={"axes": "CYX"})
    image = InputSpec(path=str(two), channel=1).read()
    assert image.axes == "YX" and int(image.data.max()) == 7
    with pytest.raises(SpecError, match="channel 2: the image has 2 channels"):
        InputSpec(path=str(two), channel=2).read()


def test_run_spec_runs_in_a_spawned_child_like_training_does(tmp_path, noisy):
    """Specs pickle and run_spec is importable by name: the dock's child-process rule."""
    out = str(tmp_path / "child.ome.tif")
    spec = classical_spec(noisy, out, "median", {"size": 3})
    result = run(run_in_process(run_spec, spec))
    assert result.output == out and spec_of(out) == spec
