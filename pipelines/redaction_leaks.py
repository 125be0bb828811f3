"""Leak test of ``pipelines.redaction`` on identifiers made by Faker (fi_FI, sv_SE, en_GB).

``generate_leak_set`` writes Faker identifiers into Finnish, Swedish and English feedback
templates, each in a plain variant and in variants where the spaces are no-break, narrow
no-break or thin spaces, or where a zero-width space or soft hyphen sits inside the
identifier. ``leak_report`` counts an identifier as leaked when any of its characters is
outside every redaction span (the placeholder type does not matter for a leak).
``false_redactions`` is the share of hand-written gold texts (no personal data) in which
anything was redacted.

Faker is a test and benchmark dependency (the ``test`` extra), imported only here when a
set is generated. Same seed, same set.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.redaction import HETU_CHECK_CHARS, redact

__all__ = ["LeakItem", "VARIANTS", "LEAK_TYPES", "generate_leak_set", "leak_report", "false_redactions",
           "format_leak_report"]

LEAK_TYPES: tuple[str, ...] = ("HETU", "PNR", "PHONE", "EMAIL", "IBAN", "ADDRESS", "NAME")
# variant -> (character put in place of every space of the identifier and around it, or None;
#             invisible character put inside the identifier, or None)
VARIANTS: dict[str, tuple[str | None, str | None]] = {
    "plain": (None, None),
    "nbsp": ("\u00a0", None),
    "narrow-nbsp": ("\u202f", None),
    "thin-space": ("\u2009", None),
    "zero-width": (None, "\u200b"),
    "soft-hyphen": (None, "\u00ad"),
}
LOCALES: tuple[str, ...] = ("fi_FI", "sv_SE", "en_GB")
_LANG = {"fi_FI": "fi", "sv_SE": "sv", "en_GB": "en"}


@dataclass(frozen=True)
class LeakItem:
    """One sentence with one planted identifier at ``text[start:end]``."""

    text: str
    type: str
    variant: str
    start: int
    end: int


def _faker(locale: str, seed: int) -> Any:
    try:
        from faker import Faker
    except ImportError as exc:  # a test/bench dependency, not a runtime one
        raise RuntimeError("the redaction leak test needs Faker: pip install -e '.[test]'") from exc
    fake = Faker(locale)
    fake.seed_instance(seed)
    return fake


_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "fi": {
        "HETU": ("Henkilötunnukseni on {X}, ajanvaraus oli huomenna.", "Hetu {X} – korjatkaa tiedot.",
                 "Isäni ({X}) odotti kolme tuntia.", "Tunnus: {X}. Kiitos."),
        "PHONE": ("Soittakaa minulle numeroon {X}, kiitos.", "Puh. {X}", "Minut tavoittaa numerosta {X} arkisin.",
                  "Yhteystiedot: {X} tai sähköposti."),
        "EMAIL": ("Vastaus osoitteeseen {X}, kiitos.", "Sähköpostini on {X}.", "Lähetin viestin ({X}) eilen."),
        "IBAN": ("Palautus tilille {X}, kiitos.", "Tilinumeroni on {X}.", "Maksoin liikaa, tili: {X}"),
        "ADDRESS": ("Asun osoitteessa {X} ja kotihoito käy kahdesti.", "Lasku meni osoitteeseen {X}.",
                    "Osoitteeni on {X}, postia ei tullut.", "Muutin: {X}."),
        "NAME": ("Lääkäri {X} oli todella asiantunteva.", "Kiitos hoitaja {X}!", "Nimeni on {X}.",
                 "Terveisin {X}", "Sairaanhoitaja {X} auttoi minua.", "Omaisena: äitini {X} tarvitsee apua.",
                 "t. {X}", "Olen {X} ja odotin kolme tuntia."),
    },
    "sv": {
        "PNR": ("Mitt personnummer är {X}.", "Personnummer {X}, rätta uppgifterna.", "Min son ({X}) fick tid."),
        "PHONE": ("Ring mig på {X}, tack.", "Tel. {X}", "Jag nås på {X} vardagar."),
        "EMAIL": ("Svara till {X}, tack.", "Min e-post är {X}."),
        "IBAN": ("Återbetalning till konto {X}.", "Mitt kontonummer är {X}."),
        "ADDRESS": ("Jag bor på {X} och hemvården kom sent.", "Räkningen gick till {X}.",
                    "Min adress är {X}."),
        "NAME": ("Tack till sjuksköterskan {X}!", "Läkaren {X} var mycket vänlig.", "Jag heter {X}.",
                 "Hälsningar {X}", "Doktor {X} lyssnade inte.", "Mvh {X}"),
    },
    "en": {
        "PHONE": ("Please call me at {X}.", "My number is {X}, thanks.", "Phone: {X}"),
        "EMAIL": ("Please reply to {X}.", "My email is {X}."),
        "IBAN": ("Please refund to {X}.", "My IBAN is {X}."),
        "ADDRESS": ("I live at {X} and the visit was late.", "The letter went to {X}.", "My address is {X}."),
        "NAME": ("Dr. {X} was very kind.", "Nurse {X} helped me a lot.", "My name is {X}.",
                 "Kind regards, {X}", "Thanks to {X}, the visit went well.", "Doctor {X} never called back."),
    },
}


def _hetu(rng: random.Random) -> str:
    year = rng.randint(1930, 2024)
    sign = "-" if year < 2000 else "A"
    born = f"{rng.randint(1, 28):02d}{rng.randint(1, 12):02d}{year % 100:02d}"
    nnn = f"{rng.randint(2, 899):03d}"
    return f"{born}{sign}{nnn}{HETU_CHECK_CHARS[int(born + nnn) % 31]}"


def _identifier(kind: str, fake: Any, locale: str, rng: random.Random) -> str:
    if kind == "HETU":
        return fake.ssn() if locale == "fi_FI" else _hetu(rng)
    if kind == "PNR":
        return fake.ssn()  # Faker's sv_SE personnummer, YYMMDD-NNNC
    if kind == "PHONE":
        return fake.phone_number()
    if kind == "EMAIL":
        return fake.email()
    if kind == "IBAN":
        iban = fake.iban()
        return " ".join(iban[i:i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.6 else iban
    if kind == "ADDRESS":
        street = fake.street_address().replace("\n", ", ")
        r = rng.random()
        if r < 0.3:
            return f"{street}, {fake.postcode()} {fake.city()}"
        return street
    if kind == "NAME":
        return f"{fake.first_name()} {fake.last_name()}" if rng.random() < 0.8 else fake.last_name()
    raise ValueError(kind)


def _apply_variant(template: str, value: str, variant: str, rng: random.Random) -> tuple[str, int, int]:
    space, invisible = VARIANTS[variant]
    if space is not None:
        value = value.replace(" ", space)
        template = template.replace(" {X}", space + "{X}").replace("{X} ", "{X}" + space)
    if invisible is not None:
        # Inside the identifier, between two word characters (where a word processor puts one).
        spots = [i for i in range(1, len(value)) if value[i - 1].isalnum() and value[i].isalnum()]
        if spots:
            i = rng.choice(spots)
            value = value[:i] + invisible + value[i:]
    start = template.index("{X}")
    return template.replace("{X}", value), start, start + len(value)


def generate_leak_set(per_cell: int = 150, seed: int = 2026) -> list[LeakItem]:
    """``per_cell`` sentences for every (type, variant); about 6,300 with the defaults."""
    rng = random.Random(seed)
    fakers = {loc: _faker(loc, seed + i) for i, loc in enumerate(LOCALES)}
    out: list[LeakItem] = []
    for kind in LEAK_TYPES:
        locales = [loc for loc in LOCALES if kind in _TEMPLATES[_LANG[loc]]]
        for variant in VARIANTS:
            for _ in range(per_cell):
                locale = rng.choice(locales)
                template = rng.choice(_TEMPLATES[_LANG[locale]][kind])
                value = _identifier(kind, fakers[locale], locale, rng)
                text, start, end = _apply_variant(template, value, variant, rng)
                out.append(LeakItem(text, kind, variant, start, end))
    return out


def _leaked(item: LeakItem, spans: list[tuple[str, int, int]]) -> bool:
    return any(not any(s <= i < e for _, s, e in spans) for i in range(item.start, item.end)
               if not item.text[i].isspace())


def leak_report(items: list[LeakItem], examples: int = 3) -> dict[str, Any]:
    """{"cells": {(type, variant): (leaked, total)}, "examples": {type: [text, ...]}}."""
    cells: dict[tuple[str, str], list[int]] = {}
    shown: dict[str, list[str]] = {}
    for item in items:
        cell = cells.setdefault((item.type, item.variant), [0, 0])
        cell[1] += 1
        if _leaked(item, redact(item.text).spans):
            cell[0] += 1
            if len(shown.setdefault(item.type, [])) < examples:
                shown[item.type].append(item.text)
    return {"cells": {k: (v[0], v[1]) for k, v in cells.items()}, "examples": shown}


def false_redactions(paths: list[Path]) -> tuple[int, int, list[tuple[str, str]]]:
    """(texts with any redaction, texts, [(id, redacted text)]) over hand-written gold sets."""
    hit = total = 0
    found: list[tuple[str, str]] = []
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            rec = json.loads(line)
            total += 1
            r = redact(rec["text"])
            if r.spans:
                hit += 1
                found.append((rec.get("id", path.name), r.text))
    return hit, total, found


def format_leak_report(report: dict[str, Any], fp: tuple[int, int, list[tuple[str, str]]] | None = None) -> str:
    """A plain-text table: leak rate per type (rows) and variant (columns)."""
    cells: dict[tuple[str, str], tuple[int, int]] = report["cells"]
    kinds = [k for k in LEAK_TYPES if any(c[0] == k for c in cells)]
    lines = [f"Leak rate (identifiers with any character left unredacted), {sum(t for _, t in cells.values())} "
             "sentences", f"{'type':<8}" + "".join(f"{v:>13}" for v in VARIANTS)]
    for kind in kinds:
        row = f"{kind:<8}"
        for variant in VARIANTS:
            leaked, total = cells.get((kind, variant), (0, 0))
            row += f"{(leaked / total if total else 0):>12.1%} " if total else f"{'-':>13}"
        lines.append(row)
    for kind, texts in report["examples"].items():
        for t in texts:
            lines.append(f"  leak {kind}: {t!r}")
    if fp is not None:
        hit, total, found = fp
        lines.append(f"False redactions on gold texts: {hit}/{total} = {hit / total if total else 0:.1%}")
        lines += [f"  {i}: {t}" for i, t in found[:10]]
    return "\n".join(lines)

