"""Signed, dated opt-out links: anyone holding a link may withdraw that respondent's consent,
until the link expires.

The token is ``<issued at, Unix seconds>.<HMAC of ref and issue time>``: the issue time is
signed with the ref, so it cannot be moved forward. Links from before tokens carried a date
(a bare HMAC of the ref) verify as ``expired``, never as valid: their age is unknown.
"""
from __future__ import annotations

import hashlib
import hmac
from typing import Literal
from urllib.parse import urlencode

LinkStatus = Literal["valid", "expired", "invalid"]
# A link issued this far "in the future" (clock skew between the notifier and the API) still counts.
CLOCK_SKEW_S = 300


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()[:32]


def opt_out_token(key: bytes, respondent_ref: str, issued_at: float) -> str:
    """The token of a link issued at ``issued_at`` (Unix seconds)."""
    issued = int(issued_at)
    return f"{issued}.{_mac(key, f'opt-out:{respondent_ref}:{issued}')}"


def opt_out_url(base_url: str, key: bytes, respondent_ref: str, issued_at: float) -> str:
    """The link put in every message (and its List-Unsubscribe header)."""
    query = urlencode({"ref": respondent_ref, "token": opt_out_token(key, respondent_ref, issued_at)})
    return f"{base_url.rstrip('/')}/v1/opt-out?{query}"


def _same(expected: str, given: str) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a link can carry anything.
    return hmac.compare_digest(expected.encode(), given.encode())


def opt_out_status(key: bytes, respondent_ref: str, token: str, now: float, max_age_s: float) -> LinkStatus:
    """Whether ``token`` is a valid link for ``respondent_ref`` at ``now``: ``valid``, ``expired``
    (signed by us, but older than ``max_age_s``, or from before links were dated) or ``invalid``."""
    issued_text, dot, mac = token.partition(".")
    if not dot:
        return "expired" if _same(_mac(key, f"opt-out:{respondent_ref}"), token) else "invalid"
    if not (issued_text.isascii() and issued_text.isdigit() and len(issued_text) <= 12):
        return "invalid"
    issued = int(issued_text)
    if not _same(_mac(key, f"opt-out:{respondent_ref}:{issued}"), mac) or issued > now + CLOCK_SKEW_S:
        return "invalid"
    return "expired" if now - issued > max_age_s else "valid"
