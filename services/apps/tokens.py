"""Who a bearer token belongs to: the service-lead API, the console and the privacy API
all ask the same question the same way."""
from __future__ import annotations

import hmac

from services.settings import Settings


def token_user(settings: Settings, token: str | None) -> str | None:
    """The user whose API token this is (constant-time compare against every token)."""
    found = None
    for name, secret in settings.api_tokens.items():
        if token and hmac.compare_digest(secret.get_secret_value().encode(), token.encode()):
            found = name
    return found
