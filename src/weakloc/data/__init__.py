"""Data layer: image I/O, dataset layouts (DOLOS, folder, manifest), preprocessing and caching."""
