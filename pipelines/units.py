"""The county's units (schemas/units.json) as a lookup."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from schemas import load_json


LANGUAGES = ("fi", "sv", "en")


@dataclass(frozen=True)
class ThanksDigest:
    """A unit's opt-in to the weekly thanks digest (pipelines/thanks.py)."""

    enabled: bool
    team_email: str  # the team's role mailbox, never a person's
    languages: tuple[str, ...]  # the digest's languages, first is the main one; quotes only in these


@dataclass(frozen=True)
class Unit:
    code: str
    service_area: str
    names: dict[str, str]
    duty_email: str  # role mailbox that gets the unit's urgent feedback (services/workers/urgent.py)
    thanks_digest: ThanksDigest | None = None  # None: the unit has not opted in


def _thanks_digest(raw: dict | None) -> ThanksDigest | None:
    if raw is None:
        return None
    languages = tuple(raw["languages"])
    if not languages or set(languages) - set(LANGUAGES):
        raise ValueError(f"thanks_digest.languages must be a non-empty list of {LANGUAGES}, got {languages}")
    return ThanksDigest(bool(raw["enabled"]), str(raw["team_email"]), languages)


@lru_cache(maxsize=1)
def units() -> dict[str, Unit]:
    """Every unit by code."""
    data = load_json("units.json")
    return {
        u["code"]: Unit(u["code"], u["service_area"], {k: u[k] for k in LANGUAGES}, u["duty_email"],
                        _thanks_digest(u.get("thanks_digest")))
        for u in data["units"]
    }


def service_areas() -> dict[str, dict[str, str]]:
    """Service area code -> names in fi/sv/en."""
    return {code: {k: area[k] for k in ("fi", "sv", "en")}
            for code, area in load_json("units.json")["service_areas"].items()}


def escalation_email(service_area: str) -> str:
    """The role mailbox that gets an area's urgent feedback nobody acknowledged in time."""
    return str(load_json("units.json")["service_areas"][service_area]["escalation_email"])
