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
        return self.encrypt_bytes(payload.encode("utf-8"))

    def decrypt(self, token: str) -> Contact:
        return Contact(**json.loads(self.decrypt_bytes(token, "contact")))

    def encrypt_bytes(self, data: bytes) -> str:
        """Any bytes as a Fernet token under the newest key (dead letters use this too)."""
        return self._multi.encrypt(data).decode("ascii")

    def decrypt_bytes(self, token: str, what: str = "data") -> bytes:
        """The bytes of a token made under any configured key; ValueError naming ``what`` if none fits."""
        try:
            return self._multi.decrypt(token.encode("ascii"))
        except InvalidToken as exc:
            raise ValueError(f"{what} could not be decrypted with any configured key") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt a token under the newest key."""
        return self._multi.rotate(token.encode("ascii")).decode("ascii")
