"""Qt widgets and napari glue: the only place that imports Qt."""
