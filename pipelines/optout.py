"""Signed opt-out links: anyone holding the link may withdraw that respondent's consent."""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode


def opt_out_token(key: bytes, respondent_ref: str) -> str:
    return hmac.new(key, f"opt-out:{respondent_ref}".encode(), hashlib.sha256).hexdigest()[:32]


def opt_out_url(base_url: str, key: bytes, respondent_ref: str) -> str:
    query = urlencode({"ref": respondent_ref, "token": opt_out_token(key, respondent_ref)})
    return f"{base_url.rstrip('/')}/v1/opt-out?{query}"


def valid_opt_out(key: bytes, respondent_ref: str, token: str) -> bool:
    # As bytes: compare_digest refuses non-ASCII str, and a link can carry anything.
    return hmac.compare_digest(opt_out_token(key, respondent_ref).encode(), token.encode())
