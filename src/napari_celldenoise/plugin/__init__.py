"""napari contributions (reader, writer, sample data): no Qt; napari imported only when needed."""
