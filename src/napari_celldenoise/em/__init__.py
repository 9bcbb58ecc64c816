"""Electron microscopy: lattice simulation and measurement, synthetic targets, lattice metrics.

Pure numpy/scipy: no Qt, napari or TensorFlow here.
"""
