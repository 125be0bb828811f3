"""Who a bearer token belongs to: the service-lead API, the console and the privacy API
all ask the same question the same way."""
from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.apps.throttle import AuthGuard
from services.settings import Settings


def token_user(settings: Settings, token: str | None) -> str | None:
    """The user whose API token this is (constant-time compare against every token)."""
    found = None
    for name, secret in settings.api_tokens.items():
        if token and hmac.compare_digest(secret.get_secret_value().encode(), token.encode()):
            found = name
    return found


def bearer_user(settings: Settings, guard: AuthGuard) -> Callable[..., str]:
    """A FastAPI dependency: the user of the request's ``Authorization: Bearer`` token; 401 for a
    missing or unknown one (counted by ``guard``), 429 while the client is throttled."""
    bearer = HTTPBearer(auto_error=False)

    def user(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> str:
        client = guard.check(request, "api", "Authorization")
        name = token_user(settings, creds.credentials if creds else None)
        if name is not None:
            return name
        guard.failed(client, "api")
        raise HTTPException(status_code=401, detail={"error": "unauthorized", "errors": [
            {"field": "Authorization", "problem": "missing or unknown bearer token"}]})

    return user
