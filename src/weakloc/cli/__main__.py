"""``python -m weakloc.cli ...`` (e.g. under ``torchrun``)."""

from . import app

app()
