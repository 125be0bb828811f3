"""`feedback contacts ...` and `feedback erase`: key rotation and erasure from the shell."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from services.cli.guard import require_real_secrets
from services.settings import get_settings

contacts_app = typer.Typer(help="The encrypted contact store (respondent.contacts).", no_args_is_help=True)
privacy_app = typer.Typer(help="Privacy operations.", no_args_is_help=True)
privacy_app.add_typer(contacts_app, name="contacts")


@contacts_app.command("generate-key")
def generate_key() -> None:
    """Print a new Fernet key (put it FIRST in FEEDBACK_CONTACT_KEYS, then rotate)."""
    from cryptography.fernet import Fernet

    typer.echo(Fernet.generate_key().decode())


@contacts_app.command("rotate-key")
def rotate_key(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be re-encrypted.")] = False,
) -> None:
    """Re-encrypt every live contact record under the newest key in FEEDBACK_CONTACT_KEYS.

    Reads the compacted respondent.contacts topic, writes each record not yet under the
    newest key back re-encrypted, and re-writes anything newer that raced it. Afterwards
    (and once compaction has run, see docs/privacy.md) the old keys can be removed.
    """
    from services.adapters.contacts_store import rotate_keys

    settings = get_settings()
    require_real_secrets(settings, ("contact_keys",))
    report = rotate_keys(settings, dry_run=dry_run)
    typer.echo(json.dumps({"dry_run": dry_run, **report.as_dict()}, ensure_ascii=False))


@privacy_app.command("erase")
def erase_cmd(
    email: Annotated[Optional[str], typer.Option(help="The respondent's email address.")] = None,
    phone: Annotated[Optional[str], typer.Option(help="The respondent's phone number.")] = None,
    ref: Annotated[Optional[str], typer.Option(help="The pseudonymous respondent_ref (r_...).")] = None,
    requested_by: Annotated[Optional[str], typer.Option(help="Who asked (default cli:<login>).")] = None,
) -> None:
    """Erase a respondent: contact, feedback documents and Kafka records; confirm on gdpr.erasure.

    Name exactly one of --email, --phone or --ref. See docs/privacy.md for what remains.
    """
    from services.ops.erasure import cli_user, erase

    settings = get_settings()
    require_real_secrets(settings, ("pseudonym_key", "contact_keys"))
    try:
        done = erase(settings, requested_by or cli_user(), ref=ref, email=email, phone=phone)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    for event in done:
        typer.echo(json.dumps(event, ensure_ascii=False))
