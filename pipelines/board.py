"""The public "you said, we did" board: published actions of one unit, in one language.

Built from the audit store (one record per action) plus live counts of the feedback
each action answers. Public, so it carries only what the service lead wrote and
aggregate counts: never who published, respondent refs, or any feedback text.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.messages import pick_language
from pipelines.taxonomy import theme_by_code

LANGUAGES = ("fi", "sv", "en")
HEADINGS = {
    "fi": {"title": "Sanoit, me teimme", "default_item": "Palautteen perusteella tehty muutos",
           "feedback": "palautetta", "period": "Palautteet ajalta", "themes": "Aiheet", "empty":
           "Ei vielä julkaistuja muutoksia.", "published": "Julkaistu", "units": "Yksiköt"},
    "sv": {"title": "Du sa, vi gjorde", "default_item": "Förändring utifrån responsen",
           "feedback": "respons", "period": "Respons från perioden", "themes": "Teman", "empty":
           "Inga publicerade förändringar ännu.", "published": "Publicerad", "units": "Enheter"},
    "en": {"title": "You said, we did", "default_item": "A change made because of feedback",
           "feedback": "feedback", "period": "Feedback from", "themes": "Themes", "empty":
           "No published changes yet.", "published": "Published", "units": "Units"},
}
# What the board may show of an audit record; anything else (published_by) stays internal.
PUBLIC_FIELDS = ("action_id", "unit", "themes", "period", "title", "messages", "published_at")


def board_language(value: str | None) -> str:
    return value if value in LANGUAGES else "fi"


@dataclass(frozen=True)
class BoardEntry:
    action_id: str
    unit: str
    language: str  # the language of title and message (a fallback if the wanted one is missing)
    title: str
    message: str
    published_at: str
    period_from: str
    period_to: str
    themes: tuple[tuple[str, str], ...]  # (code, label in the board language)
    feedback_count: int

    def as_dict(self) -> dict[str, Any]:
        return {"action_id": self.action_id, "unit": self.unit, "language": self.language, "title": self.title,
                "message": self.message, "published_at": self.published_at,
                "period": {"from": self.period_from, "to": self.period_to},
                "themes": [{"code": c, "label": label} for c, label in self.themes],
                "feedback_count": self.feedback_count}


def board_entries(actions: list[dict[str, Any]], counts: dict[str, int], lang: str) -> list[BoardEntry]:
    """Entries newest first, each in ``lang`` or the first available of fi, sv, en."""
    lang = board_language(lang)
    themes = theme_by_code()
    out = []
    for a in sorted(actions, key=lambda a: a["published_at"], reverse=True):
        a = {k: a[k] for k in PUBLIC_FIELDS if k in a}
        text_lang = pick_language(lang, a["messages"])
        titles = a.get("title") or {}
        title = titles.get(text_lang) or titles.get(lang) or HEADINGS[text_lang]["default_item"]
        out.append(BoardEntry(
            a["action_id"], a["unit"], text_lang, title, a["messages"][text_lang].strip(), a["published_at"],
            a["period"]["from"], a["period"]["to"],
            tuple((c, themes[c].labels[lang] if c in themes else c) for c in a["themes"]),
            int(counts.get(a["action_id"], 0))))
    return out


def json_feed(entries: list[BoardEntry], *, unit: str, unit_name: str, lang: str, home_url: str,
              feed_url: str) -> dict[str, Any]:
    """The board as a JSON Feed 1.1 document (https://jsonfeed.org/version/1.1)."""
    lang = board_language(lang)
    return {
        "version": "https://jsonfeed.org/version/1.1",
        "title": f"{HEADINGS[lang]['title']}: {unit_name}",
        "home_page_url": home_url,
        "feed_url": feed_url,
        "language": lang,
        "items": [{
            "id": e.action_id,
            "title": e.title,
            "content_text": e.message,
            "date_published": e.published_at,
            "language": e.language,
            "tags": [label for _, label in e.themes],
            "_feedback": {"unit": unit, "feedback_count": e.feedback_count, "themes": [c for c, _ in e.themes],
                          "period": {"from": e.period_from, "to": e.period_to}},
        } for e in entries],
    }
