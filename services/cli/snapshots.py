"""`feedback es snapshot`, `es snapshots`, `es restore` and `es backup-setup`: backups from the shell.

``snapshot_app`` holds the commands; the main CLI adds them to its ``es`` group.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer

from pipelines import snapshots as plan
from services.settings import get_settings

snapshot_app = typer.Typer(help="Snapshots of the index and its side indices.", no_args_is_help=True)


@contextmanager
def _one_line_errors(es_url: str) -> Iterator[None]:
    """Turn the failures an operator can act on into one red line and exit code 1."""
    from elasticsearch import ApiError
    from elasticsearch import ConnectionError as EsConnectionError

    try:
        yield
    except plan.SnapshotError as exc:
        message = str(exc)
    except EsConnectionError:
        message = f"Elasticsearch is not reachable at {es_url}"
    except ApiError as exc:
        message = f"Elasticsearch refused: {exc.meta.status} {exc.message}"
    else:
        return
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@snapshot_app.command("snapshot")
def snapshot_cmd(
    name: Annotated[Optional[str], typer.Option(help="Snapshot name (default <alias>-<UTC time>).")] = None,
) -> None:
    """Snapshot the index behind the alias plus <alias>-actions and <alias>-erasures; wait until done."""
    from services.adapters.es import es_client
    from services.ops.snapshots import create_snapshot

    s = get_settings()
    with _one_line_errors(s.es_url):
        result = create_snapshot(es_client(s), s.index_alias, s.snapshot_repository, name)
    typer.echo(f"snapshot {result.name} in {result.repository} ({result.seconds} s)")
    for index, count in result.counts.items():
        typer.echo(f"  {index:40} {count:>9} documents")


@snapshot_app.command("snapshots")
def snapshots_cmd() -> None:
    """List the snapshots of the alias in the repository, oldest first."""
    from services.adapters.es import es_client
    from services.ops.snapshots import list_snapshots

    s = get_settings()
    with _one_line_errors(s.es_url):
        found = list_snapshots(es_client(s), s.index_alias, s.snapshot_repository)
    if not found:
        typer.echo(f"no snapshots of {s.index_alias} in {s.snapshot_repository}")
    for snap in found:
        counts = snap.metadata.get("counts") or {}
        docs = sum(int(v) for k, v in counts.items() if k in plan.versioned_indices(s.index_alias, counts))
        typer.echo(f"{snap.name:45} {snap.state:8} {snap.started:%Y-%m-%dT%H:%M:%SZ}  "
                   f"{','.join(snap.indices)}" + (f"  ({docs} documents)" if counts else ""))


@snapshot_app.command("restore")
def restore_cmd(
    snapshot: Annotated[Optional[str], typer.Option(help="Snapshot to restore (default: the newest successful one).")] = None,
) -> None:
    """Restore a snapshot without touching the live index, then swap the alias atomically.

    Safe over a live alias: the snapshot's index comes back as the next free version (<alias>-v<N+1>).

    Feedback of respondents on today's erasure list is deleted from it and its count is checked.

    Only then the alias and the service-area aliases move to it in one call; the old index stays for rollback.

    <alias>-actions and <alias>-erasures are restored only if missing: live ones are newer than any snapshot.

    Feedback indexed after the snapshot is not in it: replay feedback.enriched from the printed time.
    """
    from services.adapters.es import es_client
    from services.ops.snapshots import restore_snapshot

    s = get_settings()
    with _one_line_errors(s.es_url):
        r = restore_snapshot(es_client(s), s.index_alias, s.snapshot_repository, snapshot)
    typer.echo(f"restored {r.snapshot}: {r.source} -> {r.target}, {r.count} documents "
               f"({r.erased_again} of erased respondents removed again), {r.seconds} s")
    typer.echo(f"alias {s.index_alias} -> {r.target}" + (f" (was {r.previous}, kept)" if r.previous else ""))
    for index in r.side_restored:
        typer.echo(f"restored missing {index}")
    for index in r.side_kept:
        typer.echo(f"kept live {index}")
    typer.echo(f"catch up: feedback replay feedback.enriched --since {r.snapshot_started:%Y-%m-%dT%H:%M:%SZ}")


@snapshot_app.command("backup-setup")
def backup_setup_cmd(
    location: Annotated[str, typer.Option(help="Repository folder on every node (inside path.repo).")],
    schedule: Annotated[str, typer.Option(help="SLM cron schedule (UTC).")] = plan.DEFAULT_SCHEDULE,
    expire_after: Annotated[str, typer.Option(help="Delete snapshots older than this...")] = plan.DEFAULT_EXPIRE_AFTER,
    min_count: Annotated[int, typer.Option(help="...but always keep this many.")] = plan.DEFAULT_MIN_COUNT,
    max_count: Annotated[int, typer.Option(help="Never keep more than this many.")] = plan.DEFAULT_MAX_COUNT,
) -> None:
    """Register the snapshot repository (fs) and the nightly SLM policy with retention (idempotent).

    SLM needs the default distribution (compose, ECK); the local integ-test Elasticsearch
    lacks it, so there this registers the repository and then says so.
    """
    import json

    from services.adapters.es import es_client
    from services.ops.snapshots import backup_setup

    s = get_settings()
    with _one_line_errors(s.es_url):
        done = backup_setup(es_client(s), s.index_alias, s.snapshot_repository, location, schedule=schedule,
                            expire_after=expire_after, min_count=min_count, max_count=max_count)
    typer.echo(json.dumps(done))
