"""The batched TensorFlow fitter against the numba one, and the fitter setting's fallback."""

import os
import subprocess
import sys

import numpy as np
import pytest

from napari_celldenoise.spots.fit import fit_boxes, read_variance, to_photoelectrons
from napari_celldenoise.spots.simulate import Camera, simulate_boxes

pytestmark = pytest.mark.tf
CAM = Camera()


@pytest.mark.parametrize("method", ["mle", "lsq"])
def test_tf_fitter_agrees_with_the_numba_fitter(method):
    """Same model, start values and steps: positions within a small fraction of the CRLB
    (the numba model's erf approximation is the difference), same bounds and convergence."""
    from napari_celldenoise.spots.fit_tf import fit_boxes_tf

    rng = np.random.default_rng(2)
    n = 300
    photons = np.exp(rng.uniform(np.log(300), np.log(5000), n))
    adu, _ = simulate_boxes(
        n, 7, photons=photons, background=rng.uniform(5, 40, n), camera=CAM, seed=4
    )
    boxes, rv = to_photoelectrons(adu, CAM), read_variance(CAM)
    ref = fit_boxes(boxes, method=method, read_var=rv, threads=1)
    res = fit_boxes_tf(boxes, method=method, read_var=rv, batch=128)  # several batches
    assert ref.converged.mean() > 0.99
    np.testing.assert_array_equal(res.converged, ref.converged)
    ok = ref.converged
    shift = np.abs(res.params[ok, :2] - ref.params[ok, :2]) / ref.crlb[ok, :2]
    assert shift.max() < 1e-3, shift.max()
    np.testing.assert_allclose(res.params[ok, 2:], ref.params[ok, 2:], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(res.crlb[ok], ref.crlb[ok], rtol=1e-3)
    np.testing.assert_allclose(res.loglik[ok], ref.loglik[ok], rtol=1e-6)
    assert abs(res.iterations.mean() - ref.iterations.mean()) < 0.2


@pytest.mark.slow  # two CLI processes, each importing TensorFlow
def test_fitter_gpu_without_a_gpu_says_so_and_fits_on_the_cpu(tmp_path):
    """In a CLI process of its own (pytest's napari plugin is no viewer, but the fitter
    rightly keeps TensorFlow out of any process with napari in it)."""
    from napari_celldenoise.io.spots_csv import read_spots_csv
    from napari_celldenoise.spots import fit_tf

    if fit_tf.has_gpu():
        pytest.skip("TensorFlow has a GPU here: the fallback is not taken")
    img, out = tmp_path / "sim.ome.tif", tmp_path / "out.csv"
    cli = [sys.executable, "-m", "napari_celldenoise.cli"]
    sim = ["simulate-spots", "-o", str(img), "--frames", "2", "--size", "48", "48"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    subprocess.run([*cli, *sim, "--spots", "6"], check=True, env=env, capture_output=True)
    run = subprocess.run(
        [*cli, "spots", str(img), "-o", str(out), "--fitter", "gpu", "-q"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "finds no GPU; fitting on the CPU" in run.stderr
    assert run.stderr.count("no GPU") == 1  # one line, not one per frame or refit
    assert len(read_spots_csv(out)) >= 8
