"""`feedback insights ...`: scheduled jobs that turn the indexed feedback into something a team
or a lead acts on. ``insights_app`` holds the commands; the main CLI mounts it as ``insights``."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Optional

import typer

from services.settings import get_settings

insights_app = typer.Typer(help="Insights for service leads and teams.", no_args_is_help=True)


@insights_app.command("thanks-digest")
def thanks_digest(
    week: Annotated[Optional[str], typer.Option(
        help="ISO week to digest, e.g. 2026-W48 (default: the last complete week, relative to now).")] = None,
) -> None:
    """Email each opted-in unit's team its weekly thanks (schemas/units.json); a rerun sends nothing twice."""
    from pipelines.thanks import last_complete_week, parse_week
    from services.adapters.es import es_client
    from services.ops.thanks_digest import push_metrics, run_digests

    settings = get_settings()
    now = datetime.now(timezone.utc)
    try:
        chosen = parse_week(week) if week else last_complete_week(now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--week") from exc
    report = run_digests(settings, es_client(settings), chosen, now)
    push_metrics(settings)
    typer.echo(json.dumps(report.summary(), ensure_ascii=False))
    if report.failed:
        raise typer.Exit(code=1)  # the job fails and is retried; units already sent are skipped then
