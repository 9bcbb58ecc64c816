"""Headers that claim far more pixels than the file holds are refused before anything is
allocated: a 100000 x 100000 x 1000 claim costs no memory."""

from __future__ import annotations

import io
import resource

import numpy as np
import pytest
import tifffile

from napari_celldenoise.config import ReaderConfig
from napari_celldenoise.io import ImageReadError, read_image

from ._fuzz_cases import set_tag_long


def _huge(kind: str) -> bytes:
    buf = io.BytesIO()
    plane = np.ones((16, 16), np.uint16)
    if kind == "imagej-1000-planes":  # ImageJ says 1000 planes of 100000 x 100000
        ij = "ImageJ=1.11a\nimages=1000\nslices=1000\nhyperstack=true\n"
        tifffile.imwrite(buf, plane, description=ij, metadata=None)
        raw = buf.getvalue()
    elif kind == "shaped-1000-planes":  # tifffile's shape= says the same
        tifffile.imwrite(buf, plane, description='{"shape": [1000, 16, 16]}', metadata=None)
        raw = buf.getvalue()
    elif kind == "zlib":
        tifffile.imwrite(buf, plane, compression="zlib")
        raw = buf.getvalue()
    else:
        tifffile.imwrite(buf, plane, metadata=None)
        raw = buf.getvalue()
    return set_tag_long(set_tag_long(raw, 256, 100000), 257, 100000)


def _png_100000() -> bytes:
    import imagecodecs

    raw = bytearray(imagecodecs.png_encode(np.ones((16, 16), np.uint16)))
    raw[16:24] = (100000).to_bytes(4, "big") * 2
    return bytes(raw)


@pytest.mark.parametrize("kind", ["plain", "zlib", "imagej-1000-planes", "shaped-1000-planes"])
@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_huge_tiff_claim_is_refused_without_allocating(tmp_path, kind, lazy):
    path = tmp_path / f"{kind}.tif"
    path.write_bytes(_huge(kind))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageReadError) as err:
        # refused even with the opt-in for truncated files: no plane is complete
        image = read_image(path, lazy=lazy, config=ReaderConfig(allow_partial=True))
        np.asarray(image.data)  # a lazy array that opened must not blow up either
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    assert grown_mb < 100, f"{grown_mb:.0f} MB allocated for a {path.stat().st_size}-byte file"


def test_huge_png_claim_is_refused_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(_png_100000())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageReadError, match="100000 x 100000 pixels"):
        read_image(path)
    assert (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024 < 100
