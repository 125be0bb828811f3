"""Language detection restricted to the county's languages: Finnish, Swedish, English."""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal

Language = Literal["fi", "sv", "en", "und"]

_detector = None
_lock = threading.Lock()


@dataclass(frozen=True)
class LanguageGuess:
    language: Language
    confidence: float


def _get_detector():
    global _detector
    with _lock:
        if _detector is None:
            from lingua import Language as L, LanguageDetectorBuilder

            _detector = LanguageDetectorBuilder.from_languages(L.FINNISH, L.SWEDISH, L.ENGLISH).build()
        return _detector


_CODES = {"FINNISH": "fi", "SWEDISH": "sv", "ENGLISH": "en"}


def detect_language(text: str, hint: str | None = None) -> LanguageGuess:
    """Guess fi/sv/en. Short or empty texts fall back to the channel's hint.

    A hint from the app or kiosk (its UI language) wins when the text is too short
    to judge, because two-word comments ("Kiitos paljon") are easy to misread.
    """
    stripped = text.strip()
    if len(stripped) < 3:
        return LanguageGuess(hint or "und", 0.0 if not hint else 0.5)  # type: ignore[arg-type]
    values = _get_detector().compute_language_confidence_values(stripped)
    best = values[0]
    code: Language = _CODES[best.language.name]  # type: ignore[assignment]
    confidence = float(best.value)
    if hint and hint != code and (len(stripped.split()) < 3 or confidence < 0.6):
        return LanguageGuess(hint, 0.5)  # type: ignore[arg-type]
    return LanguageGuess(code, round(confidence, 4))
