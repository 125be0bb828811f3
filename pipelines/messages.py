"""Rendering "you said, we did" messages in the respondent's language."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUBJECTS = {
    "fi": "Palautteesi vaikutti: {unit}",
    "sv": "Din respons gjorde skillnad: {unit}",
    "en": "Your feedback made a difference: {unit}",
}
BODIES = {
    "fi": ("Hei,\n\nannoit meille palautetta ({unit}). Kiitos siitä. Näin palautteen perusteella toimittiin:\n\n"
           "{message}\n\nEt halua enää tällaisia viestejä? Peru tilaus: {opt_out}\n\n"
           "Ystävällisin terveisin\nHyvinvointialue"),
    "sv": ("Hej,\n\ndu gav oss respons ({unit}). Tack för det. Så här har vi agerat utifrån responsen:\n\n"
           "{message}\n\nVill du inte längre få sådana meddelanden? Avbeställ: {opt_out}\n\n"
           "Med vänliga hälsningar\nVälfärdsområdet"),
    "en": ("Hello,\n\nyou gave us feedback ({unit}). Thank you. This is what we did because of it:\n\n"
           "{message}\n\nNo longer want these messages? Unsubscribe: {opt_out}\n\n"
           "Kind regards\nThe wellbeing services county"),
}
FALLBACK_ORDER = ("fi", "sv", "en")


@dataclass(frozen=True)
class RenderedMessage:
    language: str
    subject: str
    body: str
    opt_out_url: str | None = None  # also sent as List-Unsubscribe (RFC 2369/8058) with email


def pick_language(wanted: str, available: dict[str, Any]) -> str:
    """The respondent's language if the action has it, else Finnish, Swedish, English."""
    if available.get(wanted):
        return wanted
    return next(lang for lang in FALLBACK_ORDER if available.get(lang))


def render(wanted_language: str, messages: dict[str, str], unit_names: dict[str, str],
           opt_out_url: str) -> RenderedMessage:
    """Subject and plain-text body for one respondent."""
    lang = pick_language(wanted_language, messages)
    unit = unit_names.get(lang) or next(iter(unit_names.values()))
    return RenderedMessage(lang, SUBJECTS[lang].format(unit=unit),
                           BODIES[lang].format(unit=unit, message=messages[lang].strip(), opt_out=opt_out_url),
                           opt_out_url)
