"""`feedback doctor`: one line per check, non-zero on a blocker (see services/ops/doctor.py)."""
from __future__ import annotations

from typing import Annotated

import typer

from services.ops import doctor as checks
from services.settings import get_settings


def doctor(
    ports: Annotated[bool, typer.Option(help="Also check the local stack's and services' ports (as the demo needs "
                                             "them).")] = False,
) -> None:
    """Check the interpreter, Java, Maven, disk, the configured Kafka, Elasticsearch and SMTP, and
    the trained model; one line each, exit 1 on a blocker."""
    text, code = checks.report(checks.gather(get_settings(), with_ports=ports))
    typer.echo(text)
    raise typer.Exit(code=code)
