"""`feedback reindex`: build ``<alias>-v<N+1>`` from the current version, swap the alias atomically.

Readers never notice: until the swap the alias points at the old, complete index; the
swap is one ``_aliases`` call (remove old + add new as write index, and the same for
every service area's filtered alias), and the new index is refreshed before it.
Writers keep writing to the old index while it is copied; what they change meanwhile
is copied again by ``_seq_no`` (per shard) in catch-up passes. For the last pass the
old index is write-blocked for a moment; the workers' bulk retries ride that out, and
their next retry lands in the new index. The old index stays (write-blocked, for
rollback) unless ``--delete-old``.

The local Elasticsearch has no ``_reindex`` (a module missing from the test
distribution), so the copy is client-side: scroll (``helpers.scan``) + bulk. With
``--from-kafka`` the retained ``feedback.enriched`` events are also replayed through
the indexer's document builder, so documents pick up fields the builder derives now.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Optional

import typer
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk, scan

from pipelines.documents import to_document, upgrade_document
from services.adapters.es import area_alias_actions, current_index, es_client, index_template, template_name, versioned_index
from services.logs import get_logger
from services.settings import Settings, get_settings

log = get_logger("reindex")
CATCH_UP_ROUNDS = 5
QUIET_ENOUGH = 50  # changed documents left when the write block is worth taking


class ReindexError(RuntimeError):
    """The reindex stopped before the swap; the alias still points at the old index."""


@dataclass
class ReindexResult:
    source: str
    target: str
    copied: int = 0
    caught_up: int = 0
    replayed: int = 0
    replay_missing: int = 0
    replay_rejected: int = 0
    blocked_s: float = 0.0
    seconds: float = 0.0
    deleted_old: bool = False
    rounds: list[int] = field(default_factory=list)


def next_index(es: Elasticsearch, alias: str) -> str:
    """``<alias>-v<N+1>`` where N is the highest existing version."""
    pattern = re.compile(rf"^{re.escape(alias)}-v(\d+)$")
    versions = [int(m.group(1)) for name in es.indices.get(index=f"{alias}-v*", expand_wildcards="all")
                if (m := pattern.match(name))]
    return versioned_index(alias, max(versions, default=0) + 1)


def _shards(es: Elasticsearch, index: str) -> int:
    return int(es.indices.get_settings(index=index)[index]["settings"]["index"]["number_of_shards"])


def seq_no_watermarks(es: Elasticsearch, index: str) -> list[int]:
    """Highest ``_seq_no`` per shard among searchable documents (refresh first)."""
    marks = []
    for shard in range(_shards(es, index)):
        resp = es.search(index=index, size=1, sort=[{"_seq_no": "desc"}], source=False,
                         preference=f"_shards:{shard}", track_total_hits=False)
        hits = resp["hits"]["hits"]
        marks.append(int(hits[0]["sort"][0]) if hits else -1)
    return marks


def _copy_actions(hits: Iterable[dict[str, Any]], target: str) -> Iterator[dict[str, Any]]:
    for h in hits:
        yield {"_op_type": "index", "_index": target, "_id": h["_id"], "_source": upgrade_document(h["_source"])}


def _bulk(es: Elasticsearch, actions: Iterable[dict[str, Any]], batch_size: int,
          tolerate: frozenset[int] = frozenset()) -> tuple[int, int]:
    """(documents written, items failed with a tolerated status); any other failure raises."""
    ok, errors = bulk(es.options(request_timeout=120), actions, chunk_size=batch_size, max_retries=5,
                      initial_backoff=1, raise_on_error=False)
    fatal = [e for e in errors if next(iter(e.values())).get("status") not in tolerate]
    if fatal:
        raise ReindexError(f"{len(fatal)} documents rejected, e.g. {json.dumps(fatal[0])[:500]}")
    return int(ok), len(errors)


def copy_all(es: Elasticsearch, source: str, target: str, batch_size: int, progress: bool = False) -> int:
    """Every document of ``source`` into ``target`` (a scroll sees one point in time)."""
    hits: Iterable[dict[str, Any]] = scan(es, index=source, query={"query": {"match_all": {}}}, size=batch_size,
                                          scroll="5m", request_timeout=120)
    if progress:
        from tqdm import tqdm

        hits = tqdm(hits, total=es.count(index=source)["count"], desc=f"copy {source} -> {target}", unit="doc")
    return _bulk(es, _copy_actions(hits, target), batch_size)[0]


def copy_changed(es: Elasticsearch, source: str, target: str, since: list[int], batch_size: int) -> int:
    """Documents of ``source`` changed after the per-shard ``since`` watermarks, copied again."""
    copied = 0
    for shard, mark in enumerate(since):
        hits = scan(es, index=source, query={"query": {"range": {"_seq_no": {"gt": mark}}}}, size=batch_size,
                    preference=f"_shards:{shard}", scroll="2m")
        copied += _bulk(es, _copy_actions(hits, target), batch_size)[0]
    return copied


def replay_enriched(es: Elasticsearch, settings: Settings, target: str, batch_size: int,
                    progress: bool = False) -> tuple[int, int, int]:
    """Replay feedback.enriched (retained part) onto the documents ``target`` already has.

    Partial-document updates, as the indexer writes: closure fields stay as copied. No
    upserts: a document missing from the old index was erased (GDPR) and must not come
    back; events not indexed yet reach the alias through the indexer anyway.
    Returns (documents updated, events without a document, events rejected by the schema).
    """
    from kafka import KafkaConsumer, TopicPartition

    from schemas.validate import event_errors
    from services.adapters.kafka_io import kafka_security
    from services.topics import FEEDBACK_ENRICHED

    topic = settings.topic(FEEDBACK_ENRICHED.name)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False,
                             group_id=None, consumer_timeout_ms=10_000, **kafka_security(settings))
    rejected = 0
    try:
        parts = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not parts:
            raise ReindexError(f"topic {topic} not found")
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        end = consumer.end_offsets(parts)  # replay up to here; newer events reach the alias via the indexer
        todo = {tp for tp in parts if end[tp] > consumer.position(tp)}

        def actions() -> Iterator[dict[str, Any]]:
            nonlocal rejected
            bar = None
            if progress:
                from tqdm import tqdm

                bar = tqdm(total=sum(end.values()), desc=f"replay {topic}", unit="event")
            while todo:
                for tp, records in consumer.poll(timeout_ms=1000, max_records=batch_size).items():
                    for rec in records:
                        if rec.offset >= end[tp] or rec.value is None:  # None: an erasure's tombstone
                            continue
                        try:
                            event = json.loads(rec.value)
                            ok = not event_errors("feedback.enriched", event)
                        except (ValueError, TypeError):
                            ok = False
                        if not ok:
                            rejected += 1
                            continue
                        doc = to_document(event)
                        yield {"_op_type": "update", "_index": target, "_id": doc["feedback_id"],
                               "retry_on_conflict": 3, "doc": doc}
                    if bar:
                        bar.update(len(records))
                    if consumer.position(tp) >= end[tp]:
                        todo.discard(tp)
            if bar:
                bar.close()

        written, missing = _bulk(es, actions(), batch_size, tolerate=frozenset({404}))
    finally:
        consumer.close()
    return written, missing, rejected


def swap_actions(alias: str, source: str, target: str, on_source: Iterable[str]) -> list[dict[str, Any]]:
    """One atomic ``_aliases`` body: the alias and every area alias move from source to target.

    ``on_source``: the aliases the source has now. Area aliases it lacks (an index made
    before they existed) are only added: removing a missing alias is an error.
    """
    present = set(on_source)
    removes = [a for a in area_alias_actions(alias, source, op="remove") if a["remove"]["alias"] in present]
    return ([{"remove": {"index": source, "alias": alias}},
             {"add": {"index": target, "alias": alias, "is_write_index": True}}]
            + removes + area_alias_actions(alias, target))


def reindex(es: Elasticsearch, alias: str, *, batch_size: int = 1000, settings: Settings | None = None,
            from_kafka: bool = False, delete_old: bool = False, progress: bool = False) -> ReindexResult:
    """Build the next version of the index behind ``alias`` and swap the alias to it."""
    started = time.monotonic()
    source = current_index(es, alias)
    target = next_index(es, alias)
    result = ReindexResult(source, target)
    dims = es.indices.get_mapping(index=source)[source]["mappings"]["properties"]["embedding"]["dims"]
    # The template may have changed since the source was made: the new version gets today's.
    es.indices.put_index_template(name=template_name(alias), **index_template(alias, dims))
    template_refresh = index_template(alias, dims)["template"]["settings"].get("refresh_interval", "1s")
    es.indices.create(index=target, settings={"index": {"refresh_interval": "-1"}})
    blocked_at: float | None = None
    try:
        es.indices.refresh(index=source)
        marks = seq_no_watermarks(es, source)
        result.copied = copy_all(es, source, target, batch_size, progress)
        if from_kafka:
            if settings is None:
                raise ReindexError("--from-kafka needs the settings (Kafka bootstrap, topic prefix)")
            result.replayed, result.replay_missing, result.replay_rejected = replay_enriched(
                es, settings, target, batch_size, progress)
        for _ in range(CATCH_UP_ROUNDS):  # writers kept writing to the source: copy their changes again
            es.indices.refresh(index=source)
            now = seq_no_watermarks(es, source)
            changed = copy_changed(es, source, target, marks, batch_size)
            result.rounds.append(changed)
            marks = now
            if changed <= QUIET_ENOUGH:
                break
        es.indices.add_block(index=source, block="write")
        blocked_at = time.monotonic()
        es.indices.refresh(index=source)
        result.rounds.append(copy_changed(es, source, target, marks, batch_size))
        result.caught_up = sum(result.rounds)
        es.indices.put_settings(index=target, settings={"index": {"refresh_interval": template_refresh}})
        es.indices.refresh(index=target)
        source_count, target_count = es.count(index=source)["count"], es.count(index=target)["count"]
        if target_count < source_count:
            raise ReindexError(f"{target} has {target_count} documents, {source} {source_count}")
        on_source = es.indices.get_alias(index=source)[source]["aliases"]
        resp = es.indices.update_aliases(actions=swap_actions(alias, source, target, on_source))
    except BaseException:
        # Nothing changed for readers: the alias still points at the source. Undo the rest.
        if blocked_at is not None:
            es.indices.put_settings(index=source, settings={"index.blocks.write": False})
        es.indices.delete(index=target, ignore_unavailable=True)
        raise
    if resp.get("errors"):  # ES 8 applies the other actions: nothing to undo blindly, say so loudly
        raise ReindexError(f"alias swap partly failed, check the aliases of {source} and {target}: "
                           f"{json.dumps(resp.body)[:800]}")
    result.blocked_s = round(time.monotonic() - blocked_at, 3)
    if delete_old:
        es.indices.delete(index=source)
        result.deleted_old = True
    result.seconds = round(time.monotonic() - started, 2)
    log.info("reindexed", source=source, target=target, copied=result.copied, caught_up=result.caught_up,
             replayed=result.replayed, blocked_s=result.blocked_s, seconds=result.seconds)
    return result


cli = typer.Typer(add_completion=False)


@cli.command("reindex")
def reindex_command(
    from_kafka: bool = typer.Option(False, "--from-kafka", help="Also replay the retained feedback.enriched "
                                                                  "events through today's document builder."),
    delete_old: bool = typer.Option(False, "--delete-old", help="Delete the old version after the swap "
                                                                  "(default: keep it, write-blocked, for rollback)."),
    batch_size: int = typer.Option(1000, help="Documents per scroll page and bulk request."),
    alias: Optional[str] = typer.Option(None, help="Alias to reindex (default: settings.index_alias)."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Build <alias>-v<N+1> from the current index and swap the alias (and area aliases) atomically."""
    settings = get_settings()
    es = es_client(settings)
    res = reindex(es, alias or settings.index_alias, batch_size=batch_size, settings=settings,
                  from_kafka=from_kafka, delete_old=delete_old, progress=not quiet)
    typer.echo(f"{alias or settings.index_alias}: {res.source} -> {res.target}; copied {res.copied}, "
               f"caught up {res.caught_up} (rounds {res.rounds}), replayed {res.replayed} "
               f"(no document {res.replay_missing}, invalid {res.replay_rejected}); writes blocked {res.blocked_s}s; {res.seconds}s in all"
               + ("; old index deleted" if res.deleted_old else f"; {res.source} kept, write-blocked"))
