"""Thanks that reach the team: which feedback counts as thanks, the weekly digest email of a
unit that opted in (schemas/units.json ``thanks_digest``), the quotes the public board may
show, and the training-set export a lead builds in the console. Pure: the digest job
(services/ops/thanks_digest.py), the board and the console do the I/O.

Thanks are feedback whose sentiment is positive or which carries the gratitude theme, that is
neither a duplicate nor urgent (an urgent item is about something else, whatever its tone).
Everything quoted is the redacted text from the index; nothing here sees contact details or
respondent refs. Weeks are the county's ISO weeks (Helsinki time), as the index's ``week``.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from pipelines.clock import utc_iso
from pipelines.documents import LOCAL_TZ, iso_week
from pipelines.units import Unit

GRATITUDE_THEME = "positive_gratitude"
DIGEST_QUOTES = 5  # quotes per digest: enough to read at a team meeting
QUOTE_POOL = 50  # thanks fetched per unit and week to pick the quotes from (best sentiment first)
MAX_QUOTE_CHARS = 600  # a longer text is cut: a digest is read, not studied
# What the public board may quote: short, whole, and with nothing redacted in it. A text that
# needed redaction spoke of a person or a contact detail; even redacted, "[NAME] on the night
# shift" can point at someone, and a text with placeholders reads badly in public anyway.
BOARD_QUOTE_CHARS = (12, 280)
BOARD_QUOTES = 3
PLACEHOLDER = re.compile(r"\[[A-Z][A-Z_]*\]")
# Long digit runs (a date of birth, a room or case number) keep a quote off the public board too.
DIGITS = re.compile(r"\d{3,}")
WEEK = re.compile(r"^(\d{4})-W(\d{2})$")

TEXT = {
    "fi": {"subject": "Kiitokset tiimille", "lead": "Viikon {week} myönteinen palaute ja kiitokset yksikölle {unit}.",
           "count": "Kiitoksia ja myönteistä palautetta: {n} (edellinen viikko {p}, muutos {d}); kaikkiaan "
                    "{total} palautetta tällä viikolla.",
           "quotes": "Poimintoja asukkaiden omin sanoin (tunnistetiedot poistettu):",
           "no_quotes": "Tällä viikolla ei ollut lainattavia kiitoksia tämän viestin kielillä.",
           "more": "Kaikki kiitokset ja koulutusaineiston kokoaminen konsolissa: {link}",
           "why": "Saatte tämän viestin, koska yksikkö on tilannut viikoittaisen kiitoskoosteen."},
    "sv": {"subject": "Tack till teamet", "lead": "Vecka {week}: positiv respons och tack till {unit}.",
           "count": "Tack och positiv respons: {n} (föregående vecka {p}, förändring {d}); sammanlagt {total} "
                    "respons denna vecka.",
           "quotes": "Urval med invånarnas egna ord (personuppgifter borttagna):",
           "no_quotes": "Denna vecka fanns inga tack att citera på det här meddelandets språk.",
           "more": "Alla tack och sammanställning av utbildningsmaterial i konsolen: {link}",
           "why": "Ni får detta meddelande eftersom enheten har beställt den veckovisa tacksammanställningen."},
    "en": {"subject": "Thanks to the team", "lead": "Week {week}: positive feedback and thanks for {unit}.",
           "count": "Thanks and positive feedback: {n} (previous week {p}, change {d}); {total} feedback in all "
                    "this week.",
           "quotes": "In residents' own words (personal details removed):",
           "no_quotes": "No thanks in this message's languages to quote this week.",
           "more": "All thanks, and picking quotes for a training set, in the console: {link}",
           "why": "You get this email because the unit subscribed to the weekly thanks digest."},
}


# --- weeks -------------------------------------------------------------------------------------


def parse_week(value: str) -> str:
    """``value`` if it is an ISO week such as ``2026-W48``; ValueError naming the form otherwise."""
    m = WEEK.match(value.strip())
    if not m:
        raise ValueError(f"week must look like 2026-W48, got {value!r}")
    try:
        date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a week of that year") from exc
    return value.strip()


def week_bounds(week: str) -> tuple[datetime, datetime]:
    """Start (Monday 00:00 Helsinki) and end (the next Monday) of ``week``, as aware datetimes."""
    year, number = (int(x) for x in WEEK.match(parse_week(week)).groups())  # type: ignore[union-attr]
    monday = date.fromisocalendar(year, number, 1)
    start = datetime.combine(monday, time(0), LOCAL_TZ)
    return start, datetime.combine(monday + timedelta(days=7), time(0), LOCAL_TZ)


def previous_week(week: str) -> str:
    """The ISO week before ``week``."""
    start, _ = week_bounds(week)
    return iso_week(utc_iso(start - timedelta(days=3)))


def last_complete_week(now: datetime) -> str:
    """The latest week that had ended at ``now`` (a Monday-morning run digests last week)."""
    return iso_week(utc_iso(now - timedelta(days=7)))


# --- queries -----------------------------------------------------------------------------------


def thanks_filter() -> dict[str, Any]:
    """The clause that makes a feedback document count as thanks."""
    return {"bool": {
        "should": [{"term": {"sentiment": "positive"}}, {"term": {"theme_codes": GRATITUDE_THEME}}],
        "minimum_should_match": 1,
        "must_not": [{"term": {"is_duplicate": True}}, {"term": {"urgent": True}}]}}


def period_query(unit: str | list[str] | None, start: datetime, end: datetime, *, thanks: bool = True
                 ) -> dict[str, Any]:
    """Feedback of ``unit`` (a code, codes, or None for all) received in [start, end), thanks only unless
    ``thanks`` is False."""
    clauses: list[dict[str, Any]] = [{"range": {"received_at": {"gte": utc_iso(start), "lt": utc_iso(end)}}}]
    if isinstance(unit, str):
        clauses.append({"term": {"unit": unit}})
    elif unit is not None:
        clauses.append({"terms": {"unit": unit}})
    if thanks:
        clauses.append(thanks_filter())
    return {"bool": {"filter": clauses}}


QUOTE_FIELDS = ["feedback_id", "unit", "text", "language", "received_at", "sentiment_score", "redaction_total"]
QUOTE_SORT = [{"sentiment_score": {"order": "desc", "missing": "_last"}}, {"received_at": "desc"}]


# --- quotes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Quote:
    """One redacted thank-you."""

    feedback_id: str
    unit: str
    text: str
    language: str
    received_at: str

    @classmethod
    def from_source(cls, src: dict[str, Any]) -> Quote:
        return cls(src["feedback_id"], src.get("unit", ""), (src.get("text") or "").strip(), src.get("language") or "",
                   src.get("received_at") or "")


def _cut(text: str, limit: int = MAX_QUOTE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1].rsplit(" ", 1)[0] + "…"


def pick_quotes(sources: list[dict[str, Any]], languages: tuple[str, ...], n: int = DIGEST_QUOTES) -> list[Quote]:
    """Up to ``n`` quotes in ``languages`` from documents in preference order, one per distinct text."""
    seen: set[str] = set()
    out: list[Quote] = []
    for src in sources:
        q = Quote.from_source(src)
        key = " ".join(q.text.lower().split())
        if q.language not in languages or not key or key in seen:
            continue
        seen.add(key)
        out.append(Quote(q.feedback_id, q.unit, _cut(q.text), q.language, q.received_at))
        if len(out) == n:
            break
    return out


def public_quote(src: dict[str, Any]) -> bool:
    """Whether the public board may show this thank-you (see BOARD_QUOTE_CHARS and PLACEHOLDER)."""
    text = (src.get("text") or "").strip()
    low, high = BOARD_QUOTE_CHARS
    return (low <= len(text) <= high and not src.get("redaction_total") and not PLACEHOLDER.search(text)
            and not DIGITS.search(text))


def board_quotes(sources: list[dict[str, Any]], lang: str, n: int = BOARD_QUOTES) -> list[Quote]:
    """Up to ``n`` public quotes, those in the board's language first."""
    ok = [s for s in sources if public_quote(s)]
    ordered = [s for s in ok if s.get("language") == lang] + [s for s in ok if s.get("language") != lang]
    return pick_quotes(ordered, ("fi", "sv", "en"), n)


BOARD_DAYS = 90  # the board counts thanks received in this many days before now
BOARD_TEXT = {
    "fi": {"title": "Kiitokset", "count": "kiitosta ja myönteistä palautetta viimeisten {days} päivän aikana"},
    "sv": {"title": "Tack", "count": "tack och positiv respons under de senaste {days} dagarna"},
    "en": {"title": "Thanks", "count": "thanks and positive feedback in the last {days} days"},
}


@dataclass(frozen=True)
class BoardThanks:
    """What the public board shows of a unit's thanks: a count, and quotes only for a unit that
    opted in to the thanks digest (its decision to celebrate them) and only by public_quote."""

    count: int
    days: int
    quotes: tuple[Quote, ...]


# --- the digest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class DigestEmail:
    """The weekly thanks digest of one unit."""

    unit: str
    week: str
    to: str
    subject: str
    body: str
    mail_id: str  # stable per unit and week: a resend after a crash is the same message to the mail store
    thanks: int
    previous: int
    quotes: int


def digest_id(unit: str, week: str) -> str:
    """The id of a unit's digest for a week: its Message-ID and its record's _id."""
    return f"thanks-{unit}-{week}"


def _change(now: int, before: int) -> str:
    return f"{now - before:+d}"


def compose_digest(unit: Unit, week: str, thanks: int, previous: int, total: int, quotes: list[Quote],
                   base_url: str) -> DigestEmail:
    """The digest of ``unit`` for ``week``: counts against the previous week and the quotes, in the
    unit's digest languages (one section each, the main language first)."""
    opt_in = unit.thanks_digest
    if opt_in is None or not opt_in.enabled:
        raise ValueError(f"unit {unit.code} has not opted in to the thanks digest")
    link = f"{base_url.rstrip('/')}/console/thanks?unit={unit.code}"
    main = opt_in.languages[0]
    lines: list[str] = []
    for lang in opt_in.languages:
        t = TEXT[lang]
        lines += [t["lead"].format(week=week, unit=unit.names[lang]), "",
                  t["count"].format(n=thanks, p=previous, d=_change(thanks, previous), total=total), ""]
    if quotes:
        lines += [" / ".join(TEXT[lang]["quotes"] for lang in opt_in.languages), ""]
        for q in quotes:
            lines += [f"  “{q.text}” ({q.language})", ""]
    else:
        lines += [" ".join(TEXT[lang]["no_quotes"] for lang in opt_in.languages), ""]
    lines += [TEXT[lang]["more"].format(link=link) for lang in opt_in.languages]
    lines += ["", *(TEXT[lang]["why"] for lang in opt_in.languages), ""]
    subject = " / ".join(TEXT[lang]["subject"] for lang in opt_in.languages) + f": {unit.names[main]}, {week}"
    return DigestEmail(unit.code, week, opt_in.team_email, subject, "\n".join(lines), digest_id(unit.code, week),
                       thanks, previous, len(quotes))


def digest_record(mail: DigestEmail, sent_at: datetime) -> dict[str, Any]:
    """What the digests index keeps of a sent digest: counts, never text."""
    return {"digest_id": mail.mail_id, "unit": mail.unit, "week": mail.week, "team_email": mail.to,
            "thanks": mail.thanks, "previous": mail.previous, "quotes": mail.quotes, "sent_at": utc_iso(sent_at)}


# --- the training set --------------------------------------------------------------------------

TRAINING_COLUMNS = ("unit", "unit_name", "language", "week", "text")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """A cell a spreadsheet will not run: text starting with = + - @ (or a tab or CR, which some
    programs skip before such a sign) gets a leading apostrophe (OWASP's CSV injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def training_csv(rows: list[dict[str, str]]) -> str:
    """The training set as CSV (UTF-8 with a BOM, so spreadsheet programs read ä and å right)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(TRAINING_COLUMNS)
    for row in rows:
        writer.writerow([csv_cell(row.get(c)) for c in TRAINING_COLUMNS])
    return "\ufeff" + out.getvalue()


def _md_escape(text: str) -> str:
    # One quote per paragraph: newlines folded, and Markdown/HTML that could render as links,
    # images or markup shown as typed.
    text = " ".join(text.split())
    return re.sub(r"([\\`*_{}\[\]()<>#!|])", r"\\\1", text)


def training_markdown(rows: list[dict[str, str]], title: str) -> str:
    """The training set as Markdown for a staff session: quotes grouped by unit."""
    lines = [f"# {_md_escape(title)}", ""]
    by_unit: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_unit.setdefault(row.get("unit_name") or row.get("unit", ""), []).append(row)
    for name, items in by_unit.items():
        lines += [f"## {_md_escape(name)}", ""]
        for row in items:
            lines += [f"> {_md_escape(row.get('text', ''))}", ">", f"> — {row.get('language', '')}, "
                      f"{row.get('week', '')}", ""]
    if not rows:
        lines += ["(no quotes picked yet)", ""]
    return "\n".join(lines)


def training_row(src: dict[str, Any], unit: Unit | None) -> dict[str, str]:
    """One exported row from an indexed document's redacted fields."""
    code = src.get("unit", "")
    return {"unit": code, "unit_name": unit.names["fi"] if unit else code, "language": src.get("language") or "",
            "week": src.get("week") or (iso_week(src["received_at"]) if src.get("received_at") else ""),
            "text": (src.get("text") or "").strip()}
