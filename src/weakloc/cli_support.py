"""What every command-line entry point shares: errors end as one clear message, never a traceback."""

from __future__ import annotations

from typing import Any, Callable

import typer

from .errors import WeaklocError


def guarded(fn: Callable[[], Any], also: tuple[type[Exception], ...] = ()) -> Any:
    """Run ``fn``; bad input and settings (WeaklocError, plus ``also``) exit with code 2 and the message."""
    try:
        return fn()
    except (WeaklocError, *also) as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.secho("interrupted: rerun the same command to resume", err=True)
        raise typer.Exit(130) from None
