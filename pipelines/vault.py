"""Contact details encrypted at rest (Fernet, with key rotation via MultiFernet)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


@dataclass(frozen=True)
class Contact:
    email: str | None = None
    phone: str | None = None
    push_token: str | None = None


class ContactVault:
    """Encrypts with the first key, decrypts with any (newest first)."""

    def __init__(self, keys: list[str]):
        if not keys:
            raise ValueError("contact_keys: at least one Fernet key is required")
        try:
            self._fernets = [Fernet(k.encode() if isinstance(k, str) else k) for k in keys]
        except (ValueError, TypeError) as exc:
            raise ValueError("contact_keys: each key must be 32 url-safe base64-encoded bytes (Fernet)") from exc
        self._multi = MultiFernet(self._fernets)
        self.key_id = hashlib.sha256(keys[0].encode()).hexdigest()[:8]

    def encrypt(self, contact: Contact) -> str:
        payload = json.dumps({k: v for k, v in asdict(contact).items() if v}, sort_keys=True)
        return self._multi.encrypt(payload.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> Contact:
        try:
            data = json.loads(self._multi.decrypt(token.encode("ascii")))
        except InvalidToken as exc:
            raise ValueError("contact could not be decrypted with any configured key") from exc
        return Contact(**data)

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        return self._multi.rotate(token.encode("ascii")).decode("ascii")
