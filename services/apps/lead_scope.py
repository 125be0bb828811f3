"""What one service lead may read and act on: the service areas of settings.lead_service_areas.

The API reads feedback through the same per-area filtered aliases that Kibana's roles
use (services.adapters.es.area_alias, deploy/kibana/ROLES.md), so a restricted lead's searches,
aggregations and counts never see another area's documents. ``None`` areas mean a
county-wide user (listed with ``["*"]``): the base alias. A user not listed has no areas
and reads nothing (fail closed: a forgotten entry must not open the whole county).
The API only ever *searches* through these aliases (never get-by-id, which would skip an
alias filter), so the filter holds here.
"""
from __future__ import annotations

from collections.abc import Collection

from fastapi import HTTPException

from pipelines.units import units
from services.adapters.es import area_alias
from services.settings import ALL_AREAS, Settings

Areas = frozenset[str] | None  # None: every area; empty: none


def lead_areas(settings: Settings, user: str) -> Areas:
    """The areas ``user`` is limited to: None for a county-wide user (``["*"]``), an empty set
    for a user not listed in settings.lead_service_areas (who sees nothing)."""
    areas = settings.lead_service_areas.get(user)
    if areas is None:
        return frozenset()
    return None if ALL_AREAS in areas else frozenset(areas)


def readable_index(alias: str, areas: Collection[str] | None) -> str:
    """The index expression to search for a user with ``areas``: the base alias for every
    area, else the comma-joined area aliases (a document is in exactly one area, and
    aliases of one index are ORed, so no document comes back twice)."""
    if areas is None:
        return alias
    if not areas:
        # "" would be every index in Elasticsearch; settings refuse empty lists, this is the backstop.
        raise ValueError("a lead with no service areas can read nothing")
    return ",".join(area_alias(alias, area) for area in sorted(set(areas)))


def user_index(settings: Settings, user: str) -> str:
    """The index expression ``user`` searches; 403 for a user with no service areas."""
    areas = lead_areas(settings, user)
    if areas is not None and not areas:
        raise HTTPException(status_code=403, detail={"error": "forbidden", "errors": [
            {"field": "Authorization", "problem": "this user has no service areas; an administrator lists them "
                                                  "in FEEDBACK_LEAD_SERVICE_AREAS"}]})
    return readable_index(settings.index_alias, areas)


def unit_codes(areas: Collection[str] | None) -> list[str] | None:
    """Codes of the units in ``areas`` (sorted), or None for every unit."""
    if areas is None:
        return None
    return sorted(code for code, unit in units().items() if unit.service_area in areas)


def covers_unit(areas: Collection[str] | None, unit: str) -> bool:
    """Whether a user with ``areas`` is responsible for ``unit`` (a code from schemas/units.json)."""
    return areas is None or (unit in units() and units()[unit].service_area in areas)


def require_unit(areas: Collection[str] | None, unit: str) -> None:
    """403 unless the user may act on ``unit``: nothing is read or published for it."""
    if not covers_unit(areas, unit):
        raise HTTPException(status_code=403, detail={"error": "forbidden", "errors": [
            {"field": "unit", "problem": f"unit {unit!r} is outside your service areas"}]})
