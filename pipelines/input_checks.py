"""What a request field may contain: free text, identifiers and times (types for the contracts).

The choice per kind of field (README, "Bad input"):

- **Free text** (a resident's feedback, a kiosk comment, a lead's message) is cleaned, never
  refused for its characters: C0 control characters other than tab and line feed, DEL and
  the C1 controls are removed (a stray NUL or escape from a copy-paste must not cost the
  resident their feedback); CR LF and a lone CR become LF; the bidirectional embedding,
  override and isolate controls U+202A-U+202E and U+2066-U+2069 are removed, so a text
  cannot reverse how the console, an email or the board shows what follows it. The
  implicit marks U+200E/U+200F, which change no order outside their own run, and every
  other character stay as the resident wrote them.
- **Identifiers** (email, phone, unit, kiosk, survey and response ids, keys, refs) are
  refused with 422 naming the field when they contain a control character, a format
  character (bidi controls, zero-width spaces, soft hyphens) or a line/paragraph
  separator: an identifier that looks like another one is a spoof, not a typo to repair.
- **Times** must carry a UTC offset (a naive time is ambiguous by hours) and lie between
  ``MAX_AGE`` before now and ``MAX_FUTURE`` after it, both relative to the clock at
  validation, so nothing depends on the day the code was written.
"""
from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, StringConstraints

# C0 controls except \t (09) and \n (0A); CR (0D) is turned into \n before this runs.
_DROPPED_FROM_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
# A device clock a little ahead is normal; more is a wrong clock or a local time sent as UTC.
MAX_FUTURE = timedelta(hours=1)
# Feedback older than this is not feedback about today's services (nor a plausible export).
MAX_AGE = timedelta(days=5 * 365)


def clean_free_text(value: Any) -> Any:
    """``value`` without control and bidi override/isolate characters; line breaks as LF.

    Non-strings pass through untouched so that the type check names them.
    """
    if not isinstance(value, str):
        return value
    return _DROPPED_FROM_TEXT.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def plain_identifier(value: str | None) -> str | None:
    """``value`` unchanged, or ValueError naming the first control or invisible character."""
    if value is None:
        return None
    for ch in value:
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            raise ValueError(f"contains the control or invisible character U+{ord(ch):04X}; "
                             "identifiers must be plain visible text")
    return value


def plausible_time(value: datetime) -> datetime:
    """``value`` if it lies within [now - MAX_AGE, now + MAX_FUTURE], else ValueError."""
    now = datetime.now(timezone.utc)
    if value > now + MAX_FUTURE:
        raise ValueError(f"lies in the future (more than {MAX_FUTURE} after the server's clock); "
                         "send the time with its UTC offset")
    if value < now - MAX_AGE:
        raise ValueError(f"lies more than {MAX_AGE.days} days in the past")
    return value


def identifier(max_length: int, min_length: int = 0) -> Any:
    """A string type of at most ``max_length`` characters with no control or invisible character."""
    return Annotated[str, StringConstraints(min_length=min_length, max_length=max_length),
                     AfterValidator(plain_identifier)]


def free_text(max_length: int, min_length: int = 0) -> Any:
    """A string type cleaned by :func:`clean_free_text`, then at most ``max_length`` characters."""
    return Annotated[str, BeforeValidator(clean_free_text),
                     StringConstraints(min_length=min_length, max_length=max_length)]


SubmittedTime = Annotated[AwareDatetime, AfterValidator(plausible_time)]
