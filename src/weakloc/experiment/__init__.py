"""Declarative experiments: ``spec`` (the TOML files; built-in ones in ``presets/``), ``run`` (train, predict,
score every run), ``report`` (the paper-shaped tables)."""
