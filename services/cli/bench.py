"""`feedback bench e2e` and `feedback bench ingest`: the benches that start the local stack
(devstack/, a source checkout's), registered under `feedback bench`."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from services.cli.devtools import dev_tool


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise typer.BadParameter(f"not a comma-separated list of numbers: {text!r}") from exc


def bench_e2e(
    rates: str = typer.Option("5,10,20,40", help="Steady rates to drive, items/s, comma-separated."),
    duration: float = typer.Option(20.0, help="Seconds of sending per rate."),
    burst: int = typer.Option(200, help="Items of the burst phase (as fast as 32 connections go; 0: none)."),
    saturate: int = typer.Option(384, help="Items put straight on feedback.received to saturate the enricher "
                                 "(0: skip that phase)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON."),
    kafka_port: int = typer.Option(19092, help="Local Kafka port (started if not running)."),
    es_port: int = typer.Option(19200, help="Local Elasticsearch port."),
    smtp_port: int = typer.Option(10025, help="Local SMTP sink port."),
    stack_dir: Optional[Path] = typer.Option(None, help="Local stack data root (as `feedback up`)."),
    running_services: bool = typer.Option(False, help="Use ingest, enricher and indexer already running with "
                                          "this environment's FEEDBACK_* settings instead of starting them."),
    port_offset: int = typer.Option(0, help="Added to every service port (as the tests do)."),
) -> None:
    """Time from ingest's 202 to searchable per rate and in a burst, backlog, stage times, cost per item."""
    run = dev_tool("devstack.bench_e2e").run_bench_e2e
    raise typer.Exit(code=run(_floats(rates), duration, burst, saturate, json_out, kafka_port, es_port, smtp_port,
                              stack_dir, running_services, port_offset))


def bench_ingest(
    duration: float = typer.Option(8.0, help="Seconds of load per endpoint and round."),
    rounds: int = typer.Option(6, help="Rounds; the endpoints alternate, so load from elsewhere hits both alike, "
                                       "and the ratio is the median over the round pairs."),
    connections: int = typer.Option(32, help="Open connections of the load generator."),
    threads: int = typer.Option(2, help="wrk threads."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the result as JSON."),
    kafka_port: int = typer.Option(19092, help="Local Kafka port (started if not running)."),
    es_port: int = typer.Option(19200, help="Local Elasticsearch port."),
    smtp_port: int = typer.Option(10025, help="Local SMTP sink port."),
    stack_dir: Optional[Path] = typer.Option(None, help="Local stack data root (as `feedback up`)."),
    port_offset: int = typer.Option(0, help="Added to the ingest and bare endpoint ports."),
) -> None:
    """Ingest against a bare FastAPI + aiokafka endpoint, same load (wrk), same run."""
    run = dev_tool("devstack.bench_ingest").run_bench_ingest
    raise typer.Exit(code=run(duration, rounds, connections, threads, json_out, kafka_port, es_port, smtp_port,
                              stack_dir, port_offset))
