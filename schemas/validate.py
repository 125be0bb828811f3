"""Validate events against their JSON Schema and report field-level errors."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker

from schemas import event_schema


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: a JSON path like ``themes[0].code`` and a message."""

    field: str
    problem: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "problem": self.problem}


class EventValidationError(ValueError):
    """An event does not match its schema."""

    def __init__(self, event_type: str, errors: list[FieldError]):
        self.event_type = event_type
        self.errors = errors
        detail = "; ".join(f"{e.field}: {e.problem}" for e in errors)
        super().__init__(f"invalid {event_type}: {detail}")


@lru_cache(maxsize=None)
def _validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(event_schema(name), format_checker=FormatChecker())


def _path(error: Any) -> str:
    parts: list[str] = []
    for p in error.absolute_path:
        parts.append(f"[{p}]" if isinstance(p, int) else (("." if parts else "") + str(p)))
    path = "".join(parts)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return f"{path}.{missing}" if path else missing
    if error.validator == "additionalProperties":
        return path or "(root)"
    return path or "(root)"


def event_errors(name: str, event: Any) -> list[FieldError]:
    """All schema violations of ``event`` as field-level errors (empty if valid)."""
    errors = sorted(_validator(name).iter_errors(event), key=lambda e: list(map(str, e.absolute_path)))
    return [FieldError(_path(e), e.message) for e in errors]


def validate_event(name: str, event: Any) -> None:
    """Raise EventValidationError unless ``event`` matches the schema of ``name``."""
    errors = event_errors(name, event)
    if errors:
        raise EventValidationError(name, errors)
