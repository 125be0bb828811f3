"""`feedback bench e2e`: time from ingest's 202 to searchable, at steady rates and in a burst.

Starts (or reuses) the local stack, starts ingest, the enricher and the indexer as their
own processes (or uses running ones), and for each rate sends app feedback through ingest
on an open-loop schedule while it polls Elasticsearch with a search per outstanding id and
samples the consumer lag of the enricher and the indexer. Between phases it scrapes the
services' /metrics, so the report can say where the time went per stage, and it reads the
processes' CPU time and peak RSS from /proc. A saturation phase puts a backlog straight on
feedback.received and compares the enricher's rate with the bare encoder's in this process.
"""
from __future__ import annotations

import asyncio
import json
import os
import random
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.bench_stats import (backlog_flat, e2e_report, e2e_targets, highest_sustainable, histogram_delta,
                                  parse_metrics, summary)
from devstack.demo_samples import sample_lines
from devstack.processes import ServiceGroup
from services.settings import SERVICE_PORTS, Settings

SERVICES = ("ingest", "enricher", "indexer")  # what stands between a 202 and a search hit
POLL_S = 0.1
DRAIN_S = 90.0  # longest wait for a phase's items after sending stopped
# (label in the report, histogram, labels): the stages the services' histograms cover.
STAGE_HISTOGRAMS = (
    ("queue before enricher", "enricher", "feedback_queue_wait_seconds", {"stage": "enricher"}),
    ("enrich: prepare (per batch)", "enricher", "feedback_enrich_step_seconds", {"step": "prepare"}),
    ("enrich: embed (per batch)", "enricher", "feedback_enrich_step_seconds", {"step": "embed"}),
    ("enrich: classify (per batch)", "enricher", "feedback_enrich_step_seconds", {"step": "classify"}),
    ("enricher chunk, commit incl.", "enricher", "feedback_stage_duration_seconds", {"stage": "enricher"}),
    ("queue before indexer", "indexer", "feedback_queue_wait_seconds", {"stage": "indexer"}),
    ("indexer chunk, commit incl.", "indexer", "feedback_stage_duration_seconds", {"stage": "indexer"}),
    ("received_at -> ES acknowledged", "indexer", "feedback_ingest_to_index_seconds", {}),
)


@dataclass
class Phase:
    name: str
    rate: float | None  # None: the burst
    sent: int = 0
    accepted: dict[str, float] = field(default_factory=dict)  # feedback_id -> monotonic time of the 202
    found: dict[str, float] = field(default_factory=dict)  # feedback_id -> when a search first found it
    lag: list[tuple[float, float]] = field(default_factory=list)  # (seconds into the phase, total lag)
    send_seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


class Bench:
    """One run: the settings of the services it drives and the clients it drives them with."""

    def __init__(self, settings: Settings, ingest_url: str, metrics_urls: dict[str, str]) -> None:
        from services.adapters.es import async_es_client

        self.settings = settings
        self.ingest_url = ingest_url
        self.metrics_urls = metrics_urls
        self.es = async_es_client(settings)
        self.key = settings.ingest_api_keys["app"].get_secret_value()
        self.bodies = [{k: v for k, v in b.items() if k not in ("submitted_at", "idempotency_key")}
                       for b in sample_lines("app.jsonl")]
        self.run_id = uuid.uuid4().hex[:8]
        self.counter = 0
        self._lag_clients: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        self.counter += 1
        b = dict(self.bodies[self.counter % len(self.bodies)])
        b["idempotency_key"] = f"bench-{self.run_id}-{self.counter}"
        return b

    async def post(self, client: httpx.AsyncClient, phase: Phase) -> None:
        phase.sent += 1
        try:
            resp = await client.post("/v1/feedback/app", json=self.body(), headers={"X-API-Key": self.key})
        except httpx.HTTPError as exc:
            phase.errors.append(type(exc).__name__)
            return
        if resp.status_code == 202:
            phase.accepted[resp.json()["feedback_id"]] = time.monotonic()
        else:
            phase.errors.append(f"HTTP {resp.status_code}")

    async def poll(self, phase: Phase, done: asyncio.Event) -> None:
        """Search for outstanding ids until ``done`` and all are found (or the drain times out)."""
        while True:
            pending = [fid for fid in phase.accepted if fid not in phase.found]
            if done.is_set() and not pending:
                return
            for start in range(0, len(pending), 1000):
                ids = pending[start:start + 1000]
                resp = await self.es.search(index=self.settings.index_alias, query={"ids": {"values": ids}},
                                            size=len(ids), _source=False)
                now = time.monotonic()
                for hit in resp["hits"]["hits"]:
                    phase.found.setdefault(hit["_id"], now)
            await asyncio.sleep(POLL_S)

    def total_lag(self) -> float:
        """Records not yet committed by the enricher and the indexer together."""
        from kafka import KafkaConsumer, TopicPartition

        from services.adapters.kafka_io import kafka_security
        from services.topics import FEEDBACK_ENRICHED, FEEDBACK_RECEIVED
        from services.workers.runtime import group_id

        inputs = {"enricher": FEEDBACK_RECEIVED.name, "indexer": FEEDBACK_ENRICHED.name}
        if self._lag_clients is None:
            # One client per group, never subscribed: it only reads the group's commits (OffsetFetch).
            self._lag_clients = {stage: KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap,
                                                      group_id=group_id(self.settings, stage),
                                                      enable_auto_commit=False, **kafka_security(self.settings))
                                 for stage in inputs}
        lag = 0
        for stage, topic in inputs.items():
            consumer = self._lag_clients[stage]
            name = self.settings.topic(topic)
            parts = [TopicPartition(name, p) for p in sorted(consumer.partitions_for_topic(name) or ())]
            ends = consumer.end_offsets(parts)
            for tp in parts:
                lag += max(0, ends[tp] - (consumer.committed(tp) or 0))
        return float(lag)

    async def sample_lag(self, phase: Phase, t0: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                phase.lag.append((time.monotonic() - t0, await asyncio.to_thread(self.total_lag)))
            except Exception as exc:  # noqa: BLE001 - a missed sample is reported, not fatal
                phase.errors.append(f"lag: {type(exc).__name__}")
            await asyncio.sleep(1.0)

    async def scrape(self, only: str | None = None) -> dict[str, dict[Any, float]]:
        async with httpx.AsyncClient(timeout=10) as client:
            return {name: parse_metrics((await client.get(url)).text) for name, url in self.metrics_urls.items()
                    if only in (None, name)}

    async def run_phase(self, phase: Phase, duration_s: float, burst: int = 0) -> dict[str, Any]:
        before = await self.scrape()
        done, sending_over = asyncio.Event(), asyncio.Event()
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(base_url=self.ingest_url, timeout=30, limits=limits) as client:
            poller = asyncio.create_task(self.poll(phase, done))
            t0 = time.monotonic()
            lagger = asyncio.create_task(self.sample_lag(phase, t0, sending_over))
            tasks: list[asyncio.Task[None]] = []
            if phase.rate is not None:  # open loop: item i leaves at t0 + i / rate, whatever the answers do
                n = int(phase.rate * duration_s)
                for i in range(n):
                    await asyncio.sleep(max(0.0, t0 + i / phase.rate - time.monotonic()))
                    tasks.append(asyncio.create_task(self.post(client, phase)))
            else:
                gate = asyncio.Semaphore(32)

                async def one() -> None:
                    async with gate:
                        await self.post(client, phase)
                tasks = [asyncio.create_task(one()) for _ in range(burst)]
            await asyncio.gather(*tasks)
            phase.send_seconds = time.monotonic() - t0
            # A steady phase's backlog is judged while it sends; a burst's peak comes after its
            # second of sending, so its lag is sampled until its items are found.
            if phase.rate is not None:
                sending_over.set()
                await lagger
            done.set()
            try:
                await asyncio.wait_for(poller, DRAIN_S)
            except asyncio.TimeoutError:
                pass
            sending_over.set()
            await lagger
        after = await self.scrape()
        return self.phase_result(phase, before, after)

    def phase_result(self, phase: Phase, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        t2s = [phase.found[f] - t for f, t in phase.accepted.items() if f in phase.found]
        stages: dict[str, dict[str, float | None]] = {}
        for label, service, name, labels in STAGE_HISTOGRAMS:
            h = histogram_delta(before[service], after[service], name, **labels)
            stages[label] = {"mean": _r(h.mean), "p95": _r(h.quantile(0.95)), "count": h.count}
        ack = stages["received_at -> ES acknowledged"]["mean"]
        mean_t2s = sum(t2s) / len(t2s) if t2s else None
        stages["refresh + search poll (t2s mean - ack mean)"] = {
            "mean": _r(mean_t2s - ack) if mean_t2s is not None and ack is not None else None, "p95": None,
            "count": len(t2s)}
        rate = phase.rate or 0.0
        all_found = len(phase.found) == len(phase.accepted) and not phase.errors
        return {"name": phase.name, "rate": phase.rate, "sent": phase.sent, "accepted": len(phase.accepted),
                "achieved_rate": round(len(phase.accepted) / phase.send_seconds, 2) if phase.send_seconds else 0.0,
                "time_to_searchable": summary(t2s), "missing": len(phase.accepted) - len(phase.found),
                "errors": sorted(set(phase.errors))[:10], "max_lag": max((y for _, y in phase.lag), default=0.0),
                "lag": phase.lag, "flat": backlog_flat(phase.lag, rate) if phase.rate else True,
                "all_searchable": all_found, "stages": stages}

    async def saturate(self, n: int, group: ServiceGroup | None) -> dict[str, Any]:
        """Put ``n`` events straight on feedback.received and time the enricher through them,
        then time the bare encoder on the same texts here (one after the other: same CPUs).

        The bare encoder has the machine to itself, so the enricher is timed alone too: with
        the indexer stopped (when this bench started it), as what the target compares is the
        enricher's own overhead, not the CPU that Elasticsearch's indexing takes beside it
        on the same cores. A second round, with the indexer running, is reported beside it.
        """
        from pipelines.embedding import make_embedder

        events = self.saturation_events(n)
        alone = group is not None and "indexer" in group.running
        if alone:
            await asyncio.to_thread(group.stop, "indexer")
        enricher_rate = await self.time_enricher(events)
        if alone:
            await asyncio.to_thread(group.start, "indexer")
            await self.wait_drained()
        beside = await self.time_enricher(self.saturation_events(n)) if alone else enricher_rate
        await self.wait_drained()  # the indexer idle again before the bare encoder runs
        embedder = make_embedder(self.settings.embedder, self.settings.embed_threads)  # as the enricher's
        embedder.warm_up()
        texts = [e["text"] for e in events]
        batch = self.settings.enrich_batch_size
        t = time.perf_counter()
        for s in range(0, len(texts), batch):
            embedder.encode(texts[s:s + batch], kind="passage")
        bare = len(texts) / (time.perf_counter() - t)
        return {"items": n, "enricher_items_per_s": round(enricher_rate, 2), "bare_encode_items_per_s": round(bare, 2),
                "indexer": "stopped" if alone else "running",
                "beside_indexer_items_per_s": round(beside, 2),
                "batch_size": batch, "ratio": round(enricher_rate / bare, 3) if bare else 0.0}

    def saturation_events(self, n: int) -> list[dict[str, Any]]:
        from pipelines.intake import AppFeedbackIn, from_app

        return [from_app(AppFeedbackIn.model_validate(self.body())).event for _ in range(n)]

    async def time_enricher(self, events: list[dict[str, Any]]) -> float:
        """Items/s of the enricher through ``events`` put on its input at once: the rate between
        the first and the last change of its processed counter."""
        from services.adapters.kafka_io import aiokafka_producer, dumps
        from services.topics import FEEDBACK_RECEIVED

        counter = ("feedback_events_processed_total", (("outcome", "ok"), ("stage", "enricher")))
        start = (await self.scrape("enricher"))["enricher"].get(counter, 0.0)
        producer = aiokafka_producer(self.settings)
        await producer.start()
        try:
            futures = [await producer.send(self.settings.topic(FEEDBACK_RECEIVED.name), dumps(e),
                                           key=e["feedback_id"].encode()) for e in events]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        first: tuple[float, float] | None = None
        last = (time.monotonic(), start)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            value = (await self.scrape("enricher"))["enricher"].get(counter, 0.0)
            now = time.monotonic()
            if value > last[1]:
                first = first or last
                last = (now, value)
            if value - start >= len(events):
                break
            await asyncio.sleep(0.25)
        done = last[1] - (first[1] if first else start)
        seconds = last[0] - first[0] if first else 0.0
        return done / seconds if seconds > 0 else 0.0

    async def wait_drained(self, timeout_s: float = 120.0) -> None:
        """Until the enricher and the indexer have committed everything (or the time-out)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and await asyncio.to_thread(self.total_lag) > 0:
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        await self.es.close()
        if self._lag_clients is not None:
            for c in self._lag_clients.values():
                c.close()


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def proc_cost(pid: int) -> tuple[float, float]:
    """CPU seconds (user + system) and peak RSS (VmHWM, MB) of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    hwm = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return cpu, hwm


def run_bench_e2e(rates: list[float], duration_s: float, burst: int, saturate: int, json_path: Path | None,
                  kafka_port: int, es_port: int, smtp_port: int, stack_dir: Path | None,
                  running_services: bool, port_offset: int) -> int:
    """Run the bench, print the report, write ``json_path``; returns the exit code."""
    from devstack import LocalStack
    from pipelines.embedding import make_embedder
    from devstack.bench_run import drop_run
    from services.adapters.es import es_client, setup_index
    from services.adapters.topic_admin import create_topics

    stack: LocalStack | None = None
    group: ServiceGroup | None = None
    if running_services:  # the services' own environment says where everything is
        settings = Settings()
    else:
        stack = LocalStack(kafka_port=kafka_port, es_port=es_port, smtp_port=smtp_port, stack_dir=stack_dir)
        stack.start()
        run = uuid.uuid4().hex[:6]
        env = {**stack.env(), "FEEDBACK_TOPIC_PREFIX": f"bench-{run}.", "FEEDBACK_INDEX_ALIAS": f"bench-{run}-feedback",
               "FEEDBACK_STATE_DIR": str(Path(tempfile.gettempdir()) / f"feedback-bench-{run}"),
               "FEEDBACK_DEV_MODE": "true"}
        os.environ.update(env)
        settings = Settings()
        create_topics(settings)
        setup_index(es_client(settings), settings.index_alias, make_embedder(settings.embedder).dim)
        group = ServiceGroup(env, Path(tempfile.gettempdir()) / f"feedback-bench-{run}" / "logs",
                             port_offset=port_offset)
        print(f"starting {', '.join(SERVICES)} (logs in {group.log_dir})", flush=True)
        group.start_all(SERVICES)
    port = lambda name: SERVICE_PORTS[name] + port_offset  # noqa: E731
    bench = Bench(settings, f"http://127.0.0.1:{port('ingest')}",
                  {s: f"http://127.0.0.1:{port(s)}/metrics" for s in ("enricher", "indexer")})
    pids = {name: sp.proc.pid for name, sp in group.running.items()} if group else {}
    try:
        result = asyncio.run(_drive(bench, rates, duration_s, burst, saturate, pids, group))
    finally:
        if group is not None:
            group.stop_all()
            # The run's own topics and index: a stack the bench reused keeps nothing of it.
            drop_run(settings, index=True)
        if stack is not None:
            stack.stop()
    result["machine"] = f"{os.cpu_count()} CPUs"
    result["topic_prefix"], result["index_alias"] = settings.topic_prefix, settings.index_alias
    print(e2e_report(result))
    if json_path is not None:
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {json_path}")
    return 0


async def _drive(bench: Bench, rates: list[float], duration_s: float, burst: int, saturate: int,
                 pids: dict[str, int], group: ServiceGroup | None) -> dict[str, Any]:
    random.seed(0)
    try:
        # Warm the path (first requests load models, open connections) outside the figures.
        await bench.run_phase(Phase("warm-up", 2.0), 3.0)
        cost_before = {name: proc_cost(pid) for name, pid in pids.items()}
        phases = []
        for rate in rates:
            print(f"steady {rate:g} items/s for {duration_s:g} s ...", flush=True)
            phases.append(await bench.run_phase(Phase(f"{rate:g}/s", rate), duration_s))
        if burst:
            print(f"burst of {burst} ...", flush=True)
            phases.append(await bench.run_phase(Phase(f"burst {burst}", None), 0.0, burst))
        items = sum(p["accepted"] for p in phases)
        cost = {}
        for name, pid in pids.items():
            cpu, hwm = proc_cost(pid)
            used = cpu - cost_before[name][0]
            cost[name] = {"cpu_s": round(used, 2), "cpu_ms_per_item": round(1000 * used / max(1, items), 2),
                          "peak_rss_mb": round(hwm, 1)}
        sat = None
        if saturate:
            print(f"saturating the enricher with {saturate} items ...", flush=True)
            sat = await bench.saturate(saturate, group)
        best = highest_sustainable(phases)
        return {"rates": rates, "duration_s": duration_s, "poll_s": POLL_S, "phases": phases,
                "highest_sustainable": best, "cost": cost, "saturation": sat,
                "targets": e2e_targets(phases, best) + (
                    [{"what": "enricher saturated >= 0.9 of bare encode", "figure": f"{sat['ratio']:.2f}",
                      "met": sat["ratio"] >= 0.9}] if sat else []),
                "settings": {"enrich_batch_size": bench.settings.enrich_batch_size,
                             "index_batch_size": bench.settings.index_batch_size,
                             "index_batch_within_s": bench.settings.index_batch_within_s,
                             "embedder": bench.settings.embedder}}
    finally:
        await bench.close()
