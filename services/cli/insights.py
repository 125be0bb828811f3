"""`feedback insights drivers|emerging|taxonomy-changes|thanks-digest`: the insights jobs and their tables.

The CronJobs of deploy/k8s/base/insights.yaml run the first two; by hand they print what a
lead would see (text only through the feedback alias, and only the redacted text stored there).
"""
from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from services.settings import get_settings

insights_app = typer.Typer(help="Key drivers, emerging topics and thanks digests for service leads and teams.",
                           no_args_is_help=True)


def _when(at: str | None) -> datetime:
    from pipelines.clock import parse_ts

    try:
        return parse_ts(at) if at else datetime.now(timezone.utc).replace(microsecond=0)
    except ValueError as exc:
        raise typer.BadParameter(f"--at: not an ISO 8601 time: {at!r}") from exc


def drivers_table(report: Any) -> str:
    """The key drivers of a run as a readable table, one block per unit and service area."""
    from pipelines.taxonomy import theme_by_code
    from pipelines.units import units

    themes, names = theme_by_code(), units()
    lines = [f"Key drivers {report.period_from} .. {report.period_to}: effect = satisfaction points (0-100) "
             "a theme adds, [95% interval]; impact = effect x share of feedback"]
    for (scope, key), result in report.groups.items():
        name = names[key].names["fi"] if scope == "unit" and key in names else key
        head = f"\n{scope} {key} ({name})" if name != key else f"\n{scope} {key}"
        mean = f", mean {result.mean:.1f}" if result.mean is not None else ""
        lines.append(f"{head}: {result.n} with {result.outcome or 'no outcome'}{mean}")
        if not result.ok:
            lines.append(f"  too little data: {result.insufficient}")
            continue
        lines.append(f"  {'#':>2} {'theme':34} {'n':>5} {'share':>6} {'effect':>8} {'interval':>17} {'impact':>7}")
        for rank, d in enumerate(result.drivers, start=1):
            label = themes[d.theme].labels["en"] if d.theme in themes else d.theme
            mark = "" if d.clear else "  (not clear)"
            lines.append(f"  {rank:>2} {label[:34]:34} {d.n:>5} {d.prevalence:>6.0%} {d.effect:>+8.1f} "
                         f"{f'[{d.effect_low:+.1f}, {d.effect_high:+.1f}]':>17} {d.impact:>+7.2f}{mark}")
        if result.too_rare:
            lines.append("  too rare to rank: " + ", ".join(f"{c} ({k})" for c, k in result.too_rare.items()))
    if not report.groups:
        lines.append("\n(no feedback in the period)")
    return "\n".join(lines)


def emerging_table(report: Any, texts: dict[str, str]) -> str:
    """Emerging topics as a readable table with their quotes (redacted texts)."""
    lines = [f"Topics the taxonomy covers poorly, {report.window_from} .. {report.window_to} "
             "(size now, sizes in earlier windows, growth)"]
    for d in report.topics:
        flag = "EMERGING" if d["emerging"] else "steady  "
        lines.append(f"\n{flag} {d['service_area']:14} {d['topic_id']}  size {d['size']:>3}  earlier "
                     f"{','.join(str(s) for s in d['earlier_sizes']) or '-':>9}  growth x{d['growth']:<5} "
                     f"status {d['status']}")
        lines.append(f"  fi: {', '.join(d['keywords_fi']) or '-'}")
        lines.append(f"  sv: {', '.join(d['keywords_sv']) or '-'}")
        for qid in d["quote_ids"]:
            if qid in texts:
                lines.append(f"  \u201c{texts[qid]}\u201d")
    if not report.topics:
        lines.append("\n(no clusters of poorly covered feedback)")
    return "\n".join(lines)


@insights_app.command("drivers")
def drivers_cmd(
    days: Annotated[Optional[int], typer.Option(help="Period length in days (default FEEDBACK_INSIGHTS_PERIOD_DAYS).")] = None,
    at: Annotated[Optional[str], typer.Option(help="End of the period, ISO 8601 (default now).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print only; write nothing to the index.")] = False,
) -> None:
    """What matters most: each theme's effect on satisfaction per unit and service area, into
    <alias>-insights-drivers; prints the table."""
    from services.adapters.es import es_client
    from services.logs import configure_logging
    from services.ops.insights import run_drivers

    settings = get_settings()
    configure_logging(settings.log_level, "insights")
    if days is not None and days < 1:
        raise typer.BadParameter("--days: must be at least 1")
    report = run_drivers(settings, es_client(settings), _when(at), days, write=not dry_run)
    typer.echo(drivers_table(report))


@insights_app.command("emerging")
def emerging_cmd(
    at: Annotated[Optional[str], typer.Option(help="End of the recent window, ISO 8601 (default now).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print only; write nothing, publish nothing.")] = False,
) -> None:
    """What is new: clusters of poorly covered recent feedback per service area, into
    <alias>-insights-emerging and insights.emerging; prints the table."""
    from kafka import KafkaProducer

    from services.adapters.es import es_client
    from services.adapters.kafka_io import kafka_security
    from services.logs import configure_logging
    from services.ops.insights import quotes, run_emerging

    settings = get_settings()
    configure_logging(settings.log_level, "insights")
    es = es_client(settings)
    producer = None if dry_run else KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all",
                                                  **kafka_security(settings))
    try:
        report = run_emerging(settings, es, _when(at), producer)
    finally:
        if producer is not None:
            producer.close()
    ids = [q for d in report.topics for q in d["quote_ids"]]
    typer.echo(emerging_table(report, quotes(es, settings.index_alias, ids)))


@insights_app.command("taxonomy-changes")
def taxonomy_changes_cmd(
    out: Annotated[Optional[Path], typer.Option(help="Write the versioned change file (JSON lines) here.")] = None,
) -> None:
    """The themes leads promoted from emerging topics, one taxonomy version each, oldest first."""
    from services.adapters.es import es_client
    from services.adapters.stores import taxonomy_changes_index

    settings = get_settings()
    resp = es_client(settings).options(ignore_status=404).search(
        index=taxonomy_changes_index(settings.index_alias), size=1000, sort=[{"promoted_at": "asc"}])
    changes = [h["_source"] for h in resp.get("hits", {}).get("hits", [])]
    if out:
        out.write_text("".join(json.dumps(c, ensure_ascii=False, sort_keys=True) + "\n" for c in changes),
                       encoding="utf-8")
    for c in changes:
        typer.echo(f"{c['version']:24} {c['change']:10} {c['code']:28} {c['promoted_by']:16} {c['promoted_at']}")
    if not changes:
        typer.echo("(no taxonomy changes)")


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
