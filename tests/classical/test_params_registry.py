"""Parameter specs and the method registry shared by the CLI and the dock."""

from __future__ import annotations

import pytest

from napari_celldenoise.classical.params import Param, ParamError, parse_assignments
from napari_celldenoise.classical.registry import METHODS, get_method

EXPECTED = [
    "gaussian",
    "median",
    "bilateral",
    "nlm",
    "anisotropic",
    "tv",
    "wavelet",
    "bm3d",
    "adaptive-median",
    "kde-lof",
    "gridlof",
    "bragg",
]


def test_registry_has_every_method_of_the_contract():
    assert list(METHODS) == EXPECTED
    for m in METHODS.values():
        assert m.params, m.name
        if m.main is not None:
            assert m.param(m.main).kind in ("float", "int", "odd")
        for p in m.params:
            lo, hi = p.slider_range(2.0)
            assert lo <= hi
            if p.kind not in ("choice", "bool"):
                p.check(p.default_for(2.0))  # defaults are in range
    assert get_method("kde-lof").impulse and get_method("kde-lof").main is None
    assert get_method("bm3d").heavy and not get_method("gaussian").heavy


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(ParamError, match="unknown method 'nope'.*gaussian"):
        get_method("nope")


@pytest.mark.parametrize(
    ("method", "given", "message"),
    [
        ("gaussian", {"sigma": "-1"}, "out of range"),
        ("gaussian", {"sigma": "0"}, "out of range"),
        ("gaussian", {"sigma": "abc"}, "expected a number"),
        ("gaussian", {"sigma": "nan"}, "finite"),
        ("median", {"size": "4"}, "must be odd"),
        ("median", {"size": "3.5"}, "whole number"),
        ("median", {"size": "99"}, "out of range"),
        ("wavelet", {"method": "Foo"}, "not one of"),
        ("median", {"radius": "3"}, "unknown parameter 'radius'"),
        ("anisotropic", {"step": "0.5"}, "out of range"),
    ],
)
def test_bad_values_are_refused(method, given, message):
    with pytest.raises(ParamError, match=message):
        get_method(method).resolve(given)


def test_intensity_defaults_and_sliders_scale_with_noise_sigma():
    nlm = get_method("nlm")
    assert nlm.resolve({}, sigma=10.0)["h"] == pytest.approx(8.0)
    assert nlm.resolve({}, sigma=0.5)["h"] == pytest.approx(0.4)
    assert nlm.param("h").slider_range(10.0) == pytest.approx((1.0, 30.0))
    assert nlm.resolve({"h": "3.5"})["h"] == 3.5
    assert get_method("median").resolve({"size": 5})["size"] == 5


def test_search_grid_respects_kind_and_limits():
    size = get_method("median").param("size")
    grid = size.search_grid(1.0, 9)
    assert all(v % 2 == 1 and 3 <= v <= 15 for v in grid) and len(grid) >= 5
    sigma = get_method("gaussian").param("sigma")
    g = sigma.search_grid(1.0, 8)
    assert g[0] == pytest.approx(0.3) and g[-1] == pytest.approx(5.0) and len(g) == 8


def test_parse_assignments():
    assert parse_assignments(["h=3", "patch-size=5"]) == {"h": "3", "patch_size": "5"}
    with pytest.raises(ParamError, match="NAME=VALUE"):
        parse_assignments(["h"])
    assert Param("flag", False, kind="bool").parse("yes") is True
