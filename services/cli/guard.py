"""Refuse, in one line, to run a service or command on development secrets."""
from __future__ import annotations

import typer

from services.settings import SECRET_SETTINGS, DevelopmentSecretsError, Settings


def require_real_secrets(settings: Settings, names: tuple[str, ...] = SECRET_SETTINGS) -> None:
    """Exit with code 2 and a one-line error naming the settings to change, unless every secret of
    ``names`` is real or FEEDBACK_DEV_MODE is set (a traceback would bury the one line that matters)."""
    try:
        settings.require_real_secrets(names)
    except DevelopmentSecretsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
