"""The command line: a thin layer over the library (every command is a few calls into it).

One module per group of commands, each registering its commands on the app of ``common`` where they are
defined; ``common`` also declares the data options that train / evaluate / predict / data summary share.
"""

from __future__ import annotations

import sys

# imported in the order `weakloc --help` lists their commands; each registers its own
from . import experiment, train, predict, evaluate, data  # noqa: F401, I001
from .common import app
from .generate import app as generate_app
from .released import app as import_app

app.add_typer(generate_app, name="generate")
app.add_typer(import_app, name="import")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
