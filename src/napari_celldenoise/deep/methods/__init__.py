"""One module per deep denoising method; each defines ``METHOD`` (see :mod:`..registry`)."""
