"""A "you said, we did" action as a service lead writes it (the HTTP contract of the API
and the console) and the closure.actions event it becomes."""
from __future__ import annotations

import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from pipelines.clock import utc_iso, utc_now
from pipelines.input_checks import free_text, identifier
from pipelines.taxonomy import theme_by_code
from pipelines.units import units


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    # With its UTC offset: a naive bound would shift the period by the server's zone.
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "Period":
        if self.to < self.from_:
            raise ValueError("period.to is before period.from")
        return self


class Messages(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    # Free text as for residents' feedback (pipelines/input_checks.py): these reach residents' inboxes.
    fi: free_text(5000) | None = None
    sv: free_text(5000) | None = None
    en: free_text(5000) | None = None

    @model_validator(mode="after")
    def _one_language(self) -> "Messages":
        if not any((self.fi, self.sv, self.en)):
            raise ValueError("write the message in at least one of fi, sv, en")
        return self


class ActionIn(BaseModel):
    """What a service lead publishes."""

    model_config = ConfigDict(extra="forbid")
    unit: identifier(64, min_length=1)
    themes: Annotated[list[Annotated[str, Field(max_length=64)]], Field(min_length=1, max_length=100)]
    period: Period
    messages: Messages
    title: Messages | None = None

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        if v not in units():
            raise ValueError(f"unknown unit {v!r}")
        return v

    @field_validator("themes")
    @classmethod
    def _themes(cls, v: list[str]) -> list[str]:
        unknown = [t for t in v if t not in theme_by_code()]
        if unknown:
            raise ValueError(f"unknown theme codes {unknown}")
        return sorted(set(v))


def action_event(body: ActionIn, user: str) -> dict[str, Any]:
    """The closure.actions event for what ``user`` publishes (a new action id)."""
    event: dict[str, Any] = {
        "schema_version": 1,
        "action_id": str(uuid.uuid4()),
        "unit": body.unit,
        "themes": body.themes,
        "period": {"from": utc_iso(body.period.from_), "to": utc_iso(body.period.to)},
        "messages": body.messages.model_dump(exclude_none=True),
        "published_by": user,
        "published_at": utc_now(),
    }
    if body.title:
        event["title"] = body.title.model_dump(exclude_none=True)
    return event
