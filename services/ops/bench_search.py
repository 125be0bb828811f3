"""`feedback bench search`: p50/p95 latency of keyword, kNN and hybrid queries on a large index.

Builds a throwaway index ``<alias>-bench-v1`` from the real template with ``--docs``
synthetic documents: a few hundred real sentences (taxonomy prototypes, the Finnish
and Swedish gold sets, the demo samples) embedded once with the configured embedder,
and every document's vector a noisy mix of two of them (pipelines.synthetic). Then it
runs the same request bodies the search API sends (pipelines.search), one at a time,
and reports client-side latency (HTTP round trip included) and Elasticsearch's own
``took``. Query embedding is timed separately: the API adds it to semantic and hybrid.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer

from pipelines import search as q
from pipelines.search_bench import HEADER, keyword_queries, summarize

ROOT = Path(__file__).resolve().parents[2]
bench_app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


def corpus_sentences(limit: int, seed: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(base sentences, held-out sentences) as (language, text); base has at most ``limit``."""
    from pipelines.taxonomy import themes

    found: list[tuple[str, str]] = [(lang, p) for t in themes() for lang, ps in t.prototypes.items() for p in ps]
    for name in ("gold_fi.jsonl", "gold_sv.jsonl"):
        path = ROOT / "tests" / "data" / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    rec = json.loads(line)
                    found.append((rec.get("language", name[5:7]), rec["text"]))
    for name in ("app.jsonl", "survey.jsonl"):
        path = ROOT / "deploy" / "local" / "samples" / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                rec = json.loads(line) if line.strip() else {}
                if rec.get("text") and rec.get("language_hint") in ("fi", "sv", "en"):
                    found.append((rec["language_hint"], rec["text"]))
    unique = list(dict.fromkeys(found))
    order = np.random.default_rng(seed).permutation(len(unique))
    shuffled = [unique[int(i)] for i in order]
    return shuffled[:limit], shuffled[limit:] or shuffled


def _timed(fn) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def load_index(es: Any, alias: str, docs: int, texts: list[tuple[str, str]], base: np.ndarray, seed: int,
               batch: int) -> tuple[str, float]:
    """Create the bench index and fill it; returns (index, seconds)."""
    from elasticsearch.helpers import parallel_bulk
    from tqdm import tqdm

    from pipelines.documents import new_document, to_document
    from pipelines.synthetic import synthetic_events
    from services.adapters.es import setup_index

    index = setup_index(es, alias, base.shape[1])
    es.indices.put_settings(index=index, settings={"index": {"refresh_interval": "-1"}})
    actions = ({"_op_type": "index", "_index": index, "_id": ev["feedback_id"],
                "_source": new_document(to_document(ev))}
               for ev in synthetic_events(docs, texts, base, seed=seed))
    started = time.perf_counter()
    with tqdm(total=docs, desc=f"index {index}", unit="doc") as bar:
        # Two threads: one bulk request is being indexed while the next is generated and encoded.
        for ok, item in parallel_bulk(es.options(request_timeout=300), actions, thread_count=2, chunk_size=batch,
                                      queue_size=2, raise_on_error=True):
            bar.update()
    es.indices.put_settings(index=index, settings={"index": {"refresh_interval": "1s"}})
    es.options(request_timeout=300).indices.refresh(index=index)
    return index, time.perf_counter() - started


@bench_app.command("search")
def bench_search(
    docs: int = typer.Option(50_000, "--docs", help="Synthetic documents to index."),
    queries: int = typer.Option(200, help="Timed queries per kind (after 20 warm-up queries)."),
    base_sentences: int = typer.Option(300, "--base", help="Real sentences embedded as the vector basis."),
    seed: int = typer.Option(7, help="Random seed (documents and queries)."),
    batch: int = typer.Option(1000, help="Documents per bulk request."),
    force_merge: bool = typer.Option(False, help="Force-merge to one segment before timing (best case)."),
    keep: bool = typer.Option(False, help="Keep the bench index (reused by the next run with --reuse)."),
    reuse: bool = typer.Option(False, help="Time an index kept by an earlier --keep run; do not load."),
    alias: Optional[str] = typer.Option(None, help="Bench alias (default <index_alias>-bench)."),
) -> None:
    """p50 and p95 latency of keyword, kNN and hybrid queries on an index of --docs documents."""
    from pipelines.embedding import make_embedder
    from pipelines.units import service_areas
    from services.adapters.es import es_client, template_name
    from services.settings import get_settings

    settings = get_settings()
    alias = alias or f"{settings.index_alias}-bench"
    es = es_client(settings).options(request_timeout=120)
    embedder = make_embedder(settings.embedder)
    texts, held_out = corpus_sentences(base_sentences, seed)
    typer.echo(f"embedder {embedder.name}: embedding {len(texts)} base sentences")
    base = embedder.encode([t for _, t in texts], kind="passage")

    if reuse and es.indices.exists_alias(name=alias):
        index = next(iter(es.indices.get_alias(name=alias)))
        load_s = None
    else:
        if es.indices.exists_alias(name=alias):
            raise typer.BadParameter(f"{alias} exists: use --reuse, or delete it first")
        index, load_s = load_index(es, alias, docs, texts, base, seed, batch)
    if force_merge:
        typer.echo("force-merging to one segment...")
        es.options(request_timeout=1800).indices.forcemerge(index=index, max_num_segments=1)
    count = es.count(index=index)["count"]
    segments = len({s["segment"] for s in es.cat.segments(index=index, format="json")})
    size_mb = es.indices.stats(index=index)["indices"][index]["total"]["store"]["size_in_bytes"] / 2**20
    typer.echo(f"index {index}: {count} documents, {segments} segments, {size_mb:.0f} MiB"
               + (f"; loaded in {load_s:.0f} s ({count / load_s:.0f} docs/s)" if load_s else ""))

    rng = np.random.default_rng(seed + 1)
    kw = keyword_queries(texts, queries + 20, rng)
    query_texts = [held_out[i % len(held_out)][1] for i in range(min(len(held_out), 100))]
    embed_s = []
    vectors = []
    for text in query_texts:
        s, v = _timed(lambda text=text: embedder.encode([text], kind="query")[0])
        embed_s.append(s)
        vectors.append([float(x) for x in v])
    areas = sorted(service_areas())

    def run(kind: str, make_call) -> Any:
        seconds, took = [], []
        for i in range(queries + 20):
            s, resp = _timed(lambda i=i: make_call(i))
            if i >= 20:
                seconds.append(s)
                took.append(resp.get("took", 0) if "took" in resp else max(r["took"] for r in resp["responses"]))
        return summarize(kind, seconds, took)

    def keyword(i: int) -> Any:
        text, lang = kw[i]
        return es.search(index=alias, **q.keyword_body(text, lang, q.Filters(), 20)).body

    def knn(i: int, filters: q.Filters = q.Filters()) -> Any:
        body = q.knn_body(vectors[i % len(vectors)], filters, 20)
        return es.search(index=alias, knn=body["knn"], size=body["size"], from_=body["from"],
                         source=body["_source"]).body

    def knn_filtered(i: int) -> Any:
        return knn(i, q.Filters(service_areas=(areas[i % len(areas)],)))

    def hybrid(i: int) -> Any:
        text, lang = kw[i]
        kw_body, knn_body = q.hybrid_bodies(text, lang, vectors[i % len(vectors)], q.Filters(), 0, 20)
        resp = es.msearch(searches=[{"index": alias}, kw_body, {"index": alias}, knn_body]).body
        parts = [[h["_id"] for h in r["hits"]["hits"]] for r in resp["responses"]]
        page = q.fuse_page(parts[0], parts[1], 0, 20)
        fetched = es.search(index=alias, **q.page_body(page.ids, text, lang)).body
        return {"took": resp["took"] + fetched["took"]}

    results = [run("keyword", keyword), run("knn", knn), run("knn+area filter", knn_filtered),
               run("hybrid (rrf)", hybrid)]
    emb = summarize("query embedding", embed_s)
    typer.echo("")
    typer.echo(HEADER)
    for r in results:
        typer.echo(r.row())
    typer.echo(emb.row())
    typer.echo("keyword: 1-3 corpus words, half with a language; knn: k=20, num_candidates=100; hybrid: keyword "
               "top 100 + knn k=100 (ids only) in one _msearch, fused client-side (RRF), then the page's 20 "
               "documents fetched with highlights. Semantic and hybrid API calls add the query embedding.")
    if not keep:
        es.indices.delete(index=index)
        es.indices.delete_index_template(name=template_name(alias))
        typer.echo(f"deleted {index} (use --keep to keep it)")
