"""Backups of the index: snapshot names, which snapshot to restore, how to rename, the SLM policy.

Pure logic only; ``services/ops/snapshots.py`` talks to Elasticsearch. A snapshot of one
alias holds the versioned index behind it (``<alias>-v<N>``) and the side indices
(``<alias>-actions``, ``<alias>-erasures``). A restore never overwrites the live index:
the versioned index comes back as the next free version and the alias is swapped to it
atomically, like ``feedback reindex`` does.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# SLM defaults (deployments with the default distribution): nightly at 01:30 UTC, keep
# 30 days but never fewer than 7 nor more than 60 snapshots.
DEFAULT_SCHEDULE = "0 30 1 * * ?"
DEFAULT_EXPIRE_AFTER = "30d"
DEFAULT_MIN_COUNT = 7
DEFAULT_MAX_COUNT = 60


class SnapshotError(RuntimeError):
    """A snapshot or restore cannot go ahead; the message is one line for the operator."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What ``GET _snapshot/<repo>/*`` says about one snapshot (the fields we use)."""

    name: str
    state: str
    start_ms: int
    indices: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_es(cls, body: Mapping[str, Any]) -> "SnapshotInfo":
        return cls(name=body["snapshot"], state=body.get("state", "UNKNOWN"),
                   start_ms=int(body.get("start_time_in_millis") or 0),
                   indices=tuple(sorted(body.get("indices", ()))), metadata=dict(body.get("metadata") or {}))

    @property
    def started(self) -> datetime:
        return datetime.fromtimestamp(self.start_ms / 1000, tz=timezone.utc)


def snapshot_name(alias: str, now: datetime) -> str:
    """``<alias>-<UTC yyyymmdd-hhmmss-mmm>``: sortable, lower case (Elasticsearch requires it)."""
    now = now.astimezone(timezone.utc)
    return f"{alias}-{now:%Y%m%d-%H%M%S}-{now.microsecond // 1000:03d}".lower()


def _version_pattern(alias: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(alias)}-v(\d+)$")


def versioned_indices(alias: str, names: Iterable[str]) -> list[str]:
    """The ``<alias>-v<N>`` names among ``names``, lowest version first."""
    pattern = _version_pattern(alias)
    found = [(int(m.group(1)), n) for n in names if (m := pattern.match(n))]
    return [n for _, n in sorted(found)]


def next_version(alias: str, names: Iterable[str]) -> str:
    """``<alias>-v<N+1>`` for the highest N among ``names`` (``-v1`` if there is none)."""
    pattern = _version_pattern(alias)
    versions = [int(m.group(1)) for n in names if (m := pattern.match(n))]
    return f"{alias}-v{max(versions, default=0) + 1}"


def of_alias(alias: str, snapshots: Iterable[SnapshotInfo]) -> list[SnapshotInfo]:
    """Snapshots holding a version of ``alias`` (one repository may serve several), oldest first."""
    return sorted((s for s in snapshots if versioned_indices(alias, s.indices)), key=lambda s: (s.start_ms, s.name))


def pick_latest(alias: str, snapshots: Iterable[SnapshotInfo]) -> SnapshotInfo | None:
    """The newest successful snapshot of ``alias``, or None. Partial or failed ones never qualify."""
    done = [s for s in of_alias(alias, snapshots) if s.state == "SUCCESS"]
    return done[-1] if done else None


def rename_rule(source: str, target: str) -> tuple[str, str]:
    """(``rename_pattern``, ``rename_replacement``) that renames exactly ``source`` to ``target``.

    Anchored, so the side indices restored in the same call keep their names.
    """
    return f"^{re.escape(source)}$", target


@dataclass(frozen=True)
class RestorePlan:
    """What a restore does: the version it brings back under a new name, and which side indices."""

    snapshot: SnapshotInfo
    source: str
    target: str
    side_restore: tuple[str, ...]
    side_kept: tuple[str, ...]

    @property
    def indices(self) -> list[str]:
        return [self.source, *self.side_restore]

    @property
    def rename(self) -> tuple[str, str]:
        return rename_rule(self.source, self.target)

    @property
    def expected_count(self) -> int | None:
        """Documents the source had when ``feedback es snapshot`` took it (SLM snapshots don't say)."""
        counts = self.snapshot.metadata.get("counts") or {}
        value = counts.get(self.source)
        return int(value) if value is not None else None


def plan_restore(alias: str, snapshot: SnapshotInfo, existing: Iterable[str], side_indices: Iterable[str]) -> RestorePlan:
    """Decide what to restore from ``snapshot`` given the indices that exist now.

    The versioned index becomes the next free version (never an existing name). A side
    index is restored only if it is missing: a live one is newer than any snapshot (the
    erasure list in particular must never go back in time).
    """
    if snapshot.state != "SUCCESS":
        raise SnapshotError(f"snapshot {snapshot.name} is {snapshot.state}, not SUCCESS; pick another")
    versions = versioned_indices(alias, snapshot.indices)
    if len(versions) != 1:
        raise SnapshotError(f"snapshot {snapshot.name} holds {len(versions)} versions of {alias} "
                            f"({', '.join(versions) or 'none'}); expected one")
    existing = set(existing)
    source = versions[0]
    target = next_version(alias, existing | {source})
    in_snapshot = [s for s in side_indices if s in snapshot.indices]
    return RestorePlan(snapshot=snapshot, source=source, target=target,
                       side_restore=tuple(s for s in in_snapshot if s not in existing),
                       side_kept=tuple(s for s in in_snapshot if s in existing))


def slm_policy_id(alias: str) -> str:
    return f"{alias}-nightly"


def slm_policy(alias: str, repository: str, side_indices: Iterable[str], *, schedule: str = DEFAULT_SCHEDULE,
               expire_after: str = DEFAULT_EXPIRE_AFTER, min_count: int = DEFAULT_MIN_COUNT,
               max_count: int = DEFAULT_MAX_COUNT) -> dict[str, Any]:
    """Body of ``PUT _slm/policy/<alias>-nightly``: the alias (resolves to its version) and side indices."""
    if not 0 < min_count <= max_count:
        raise SnapshotError(f"retention needs 0 < min_count <= max_count, got {min_count} and {max_count}")
    return {
        # Date math; SLM appends a unique suffix, e.g. feedback-nightly-2026.01.05-x1y2z3.
        "name": f"<{slm_policy_id(alias)}-{{now/d}}>",
        "schedule": schedule,
        "repository": repository,
        "config": {
            "indices": [alias, *side_indices],
            "ignore_unavailable": True,  # a side index appears only once it is first written
            "include_global_state": False,
            "metadata": {"alias": alias, "taken_by": "slm"},
        },
        "retention": {"expire_after": expire_after, "min_count": min_count, "max_count": max_count},
    }
