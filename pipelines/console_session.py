"""Signed console sessions: a cookie value that names the user, expires, and carries a
CSRF token, HMAC-signed with a key derived from the pseudonym key.

The session also carries a fingerprint of the user's API token, so removing or
changing a user's token in settings ends their console sessions at once.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Session:
    user: str
    expires: int
    csrf: str
    token_fp: str


SESSION_KEY_PURPOSE = b"feedback-console-session-v1"


def session_key(master: bytes) -> bytes:
    """The cookie-signing key, derived from a deployment secret with a purpose label.

    Derived (HMAC, as in HKDF-Expand) rather than configured, so operators have no
    extra secret to manage; bumping the label's version signs everyone out.
    """
    return hmac.new(master, SESSION_KEY_PURPOSE, hashlib.sha256).digest()


def token_fingerprint(key: bytes, token: str) -> str:
    """A short keyed hash of a user's token (the token itself never goes into the cookie)."""
    return hmac.new(key, f"token:{token}".encode(), hashlib.sha256).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sig(key: bytes, payload: str) -> str:
    return hmac.new(key, f"session:{payload}".encode(), hashlib.sha256).hexdigest()


def new_session(key: bytes, user: str, token: str, lifetime_s: float, now: float | None = None) -> Session:
    now = time.time() if now is None else now
    return Session(user, int(now + lifetime_s), secrets.token_urlsafe(24), token_fingerprint(key, token))


def encode(key: bytes, session: Session) -> str:
    payload = _b64(json.dumps({"u": session.user, "e": session.expires, "c": session.csrf, "t": session.token_fp},
                              separators=(",", ":")).encode())
    return f"{payload}.{_sig(key, payload)}"


def decode(key: bytes, value: str | None, now: float | None = None) -> Session | None:
    """The session in a cookie value, or None if absent, tampered with or expired."""
    if not value or "." not in value:
        return None
    payload, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(_sig(key, payload).encode(), sig.encode()):  # bytes: any cookie text
        return None
    try:
        data = json.loads(_unb64(payload))
        session = Session(str(data["u"]), int(data["e"]), str(data["c"]), str(data["t"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.expires <= (time.time() if now is None else now):
        return None
    return session
