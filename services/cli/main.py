"""The `feedback` command: run services, manage topics and the index, demo, import."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from services.cli.guard import require_real_secrets
from services.settings import SERVICE_SECRETS, SERVICES, get_settings

app = typer.Typer(help="Resident feedback pipeline.", no_args_is_help=True, add_completion=False)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
es_app = typer.Typer(help="Elasticsearch index and alias.", no_args_is_help=True)
import_app = typer.Typer(help="Import feedback exported by other tools.", no_args_is_help=True)
dlq_app = typer.Typer(help="The dead-letter topic.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(topics_app, name="topics")
app.add_typer(es_app, name="es")
app.add_typer(import_app, name="import")



@app.command()
def run(service: Annotated[str, typer.Argument(help="One of: " + ", ".join(SERVICES))]) -> None:
    """Run one service in the foreground until SIGTERM."""
    if service not in SERVICES:
        raise typer.BadParameter(f"unknown service {service!r}; choose one of {', '.join(SERVICES)}")
    settings = get_settings()
    require_real_secrets(settings, SERVICE_SECRETS[service])
    if service in ("ingest", "api"):
        import uvicorn

        from services.logs import configure_logging
        from services.settings import service_port

        configure_logging(settings.log_level, service)
        module = __import__(f"services.apps.{service}", fromlist=["create_app"])
        # proxy_headers off: uvicorn would trust X-Forwarded-For from 127.0.0.1 by default; the apps
        # read it themselves, from settings.trusted_proxies only (services/apps/throttle.py).
        uvicorn.run(module.create_app(settings), host=settings.host, port=service_port(service, settings),
                    log_config=None, access_log=False, timeout_graceful_shutdown=20, proxy_headers=False)
    else:
        module = __import__(f"services.workers.{service}", fromlist=["main"])
        module.main()


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic with its partitions and configs (existing ones are kept)."""
    from services.adapters.topic_admin import create_topics

    for r in create_topics(get_settings()):
        typer.echo(f"{'created' if r.created else 'exists '} {r.name} ({r.partitions} partitions)")


@topics_app.command("list")
def topics_list() -> None:
    """List the pipeline's topics and what they carry."""
    from services.topics import ALL_TOPICS

    settings = get_settings()
    for t in ALL_TOPICS:
        cfg = ",".join(f"{k}={v}" for k, v in t.config.items())
        typer.echo(f"{settings.topic(t.name):28} key={t.key:15} partitions={t.partitions} {cfg}")


@es_app.command("setup")
def es_setup() -> None:
    """Install the index template and create the versioned index behind the alias."""
    from pipelines.embedding import make_embedder
    from services.adapters.es import es_client, setup_index

    settings = get_settings()
    dims = make_embedder(settings.embedder).dim
    index = setup_index(es_client(settings), settings.index_alias, dims)
    typer.echo(f"alias {settings.index_alias} -> {index} (embedding dims {dims})")


@import_app.command("survey-csv")
def import_survey_csv(
    path: Path,
    survey_id: Annotated[str, typer.Option(help="Survey id the export came from.")],
    ingest_url: Annotated[str, typer.Option(help="Ingest base URL.")] = "http://127.0.0.1:8080",
    api_key: Annotated[Optional[str], typer.Option(help="Survey channel API key (default from settings).")] = None,
    encoding: Annotated[Optional[str], typer.Option(
        help="The file's encoding (e.g. utf-8, cp1252, latin-1); detected if not given.")] = None,
) -> None:
    """Import a survey tool's CSV export through ingest, row by row; bad rows are reported, the rest imported."""
    from services.ops.survey_import import CsvFormatError, import_csv

    settings = get_settings()
    if not api_key:
        require_real_secrets(settings, ("ingest_api_keys",))
    key = api_key or settings.ingest_api_keys["survey"].get_secret_value()
    try:
        report = import_csv(path, survey_id, ingest_url, key, encoding=encoding)
    except CsvFormatError as exc:
        typer.echo(f"{path}: {exc}", err=True)
        raise typer.Exit(code=2) from exc
    for row, errors in report.rejected:
        typer.echo(f"row {row}: " + "; ".join(f"{e['field']}: {e['problem']}" for e in errors), err=True)
    typer.echo(json.dumps(report.summary(), ensure_ascii=False))  # last, after the rows it counts
    if report.rejected:
        raise typer.Exit(code=2)


@app.command()
def replay(
    topic: Annotated[str, typer.Argument(help="Base topic name, e.g. feedback.enriched.")],
    since: Annotated[Optional[str], typer.Option(help="Only records written at or after this ISO time.")] = None,
    until: Annotated[Optional[str], typer.Option(help="Only records written before this ISO time.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Count, do not produce.")] = False,
) -> None:
    """Put a topic's records on it again (downstream writes are idempotent)."""
    from services.ops.replay import parse_when
    from services.ops.replay import replay as do_replay

    try:
        report = do_replay(get_settings(), topic, parse_when(since), parse_when(until), dry_run)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(json.dumps({"copied": report.copied, "skipped": report.skipped, "dry_run": dry_run}))


@dlq_app.command("redrive")
def dlq_redrive(
    stage: Annotated[Optional[str], typer.Option(help="Only this stage's dead letters (enricher, indexer).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Count, do not produce or commit.")] = False,
) -> None:
    """Send dead letters back to their stage's input topic, each at most once."""
    from services.ops.replay import redrive

    try:
        report = redrive(get_settings(), stage, dry_run)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(json.dumps({"redriven": report.copied, "skipped": report.skipped, "dry_run": dry_run}))


@app.command("eval-redaction")
def eval_redaction(
    n: Annotated[int, typer.Option(help="Generated texts with planted identifiers.")] = 1200,
    seed: Annotated[int, typer.Option(help="Generator seed.")] = 7,
) -> None:
    """Precision and recall of PII redaction on a generated set with planted identifiers."""
    from pipelines.redaction_testset import evaluate, format_report, generate

    typer.echo(format_report(evaluate(generate(n, seed))))


def bench_redact(
    per_cell: Annotated[int, typer.Option(help="Sentences per identifier type and space variant.")] = 150,
    seed: Annotated[int, typer.Option(help="Generator seed (Faker and templates).")] = 2026,
) -> None:
    """Leak rate of redaction per identifier type and space variant (Faker), and false redactions on the gold sets."""
    from pipelines.redaction_leaks import false_redactions, format_leak_report, generate_leak_set, leak_report

    gold = sorted((Path(__file__).resolve().parents[2] / "tests" / "data").glob("gold_*.jsonl"))
    try:
        items = generate_leak_set(per_cell, seed)
    except RuntimeError as exc:
        raise typer.BadParameter(str(exc)) from exc
    typer.echo(format_leak_report(leak_report(items), false_redactions(gold)))


@app.command()
def demo(keep_running: Annotated[bool, typer.Option(help="Leave the stack running afterwards.")] = False) -> None:
    """Start the local stack and every service, send the sample set, print a summary."""
    from services.cli.devtools import dev_tool

    run_demo = dev_tool("devstack.demo").run_demo
    raise typer.Exit(code=run_demo(keep_running=keep_running))


def _register_subcommands() -> None:
    """Commands that live beside the code they drive, gathered under one `feedback`."""
    from services.ops.bench_search import bench_app
    from services.cli.bench import bench_e2e, bench_ingest
    from services.cli.ml import bench_enrich, ml_app
    from services.cli.doctor import doctor
    from services.cli.insights import insights_app
    from services.cli.privacy import privacy_app
    from services.cli.snapshots import snapshot_app
    from services.cli.stack import stack_app
    from services.ops.reindex import cli as reindex_cli

    app.command()(doctor)
    app.registered_commands.extend(stack_app.registered_commands)  # up, down, smtp-sink
    app.registered_commands.extend(reindex_cli.registered_commands)  # reindex
    app.registered_commands.extend(privacy_app.registered_commands)  # erase
    es_app.registered_commands.extend(snapshot_app.registered_commands)  # es snapshot, snapshots, restore, backup-setup
    app.registered_groups.extend(privacy_app.registered_groups)  # contacts
    # train, eval; the enrichment benchmark sits with the search one under `bench`.
    app.registered_commands.extend(c for c in ml_app.registered_commands if c.callback is not bench_enrich)
    bench_app.command("enrich")(bench_enrich)
    bench_app.command("redact")(bench_redact)
    bench_app.command("e2e")(bench_e2e)
    bench_app.command("ingest")(bench_ingest)
    app.add_typer(bench_app, name="bench")
    app.add_typer(insights_app, name="insights")


_register_subcommands()

def main() -> None:
    """The console script: the typer app, with an unreachable Kafka or Elasticsearch told in
    one line (exit 3) instead of a traceback."""
    try:
        app()
    except Exception as exc:  # noqa: BLE001 - anything not about reachability is re-raised
        line = unreachable_line(exc)
        if line is None:
            raise
        typer.echo(line, err=True)
        raise SystemExit(3) from None


def unreachable_line(exc: BaseException) -> str | None:
    """One line naming the server a command could not reach, or None for other errors."""
    from kafka import errors as admin_errors  # kafka-python: the admin client of topics create and tools

    from services.workers.faults import is_kafka_error, is_transient

    admin_unreachable = isinstance(exc, (admin_errors.KafkaTimeoutError, admin_errors.BrokerNotAvailableError,
                                         admin_errors.KafkaConnectionError))
    if not (is_transient(exc) or admin_unreachable):
        return None
    settings = get_settings()
    if admin_unreachable or is_kafka_error(exc):
        return (f"error: Kafka at {settings.kafka_bootstrap} did not answer ({type(exc).__name__}); start it "
                "(`feedback up`) or set FEEDBACK_KAFKA_BOOTSTRAP; `feedback doctor` checks it")
    if type(exc).__module__.startswith(("elasticsearch", "elastic_transport")):
        return (f"error: Elasticsearch at {settings.es_url} did not answer ({type(exc).__name__}); start it "
                "(`feedback up`) or set FEEDBACK_ES_URL; `feedback doctor` checks it")
    return f"error: a server did not answer: {type(exc).__name__}: {str(exc)[:200]}; `feedback doctor` checks them"


if __name__ == "__main__":
    main()
