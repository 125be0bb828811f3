"""`feedback up`, `feedback down` and `feedback smtp-sink`: the local stack from the shell.

``stack_app`` is a typer app holding the three commands; the main CLI mounts it (or
registers :func:`up`, :func:`down` and :func:`smtp_sink` directly).
"""
from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Optional

import typer

stack_app = typer.Typer(help="Start and stop the local Kafka, Elasticsearch and SMTP sink.", no_args_is_help=True)


def _logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        # Health polling would otherwise log every request and every client connect.
        for noisy in ("httpx", "kafka", "mail.log"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def _wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (so `kill <pid>` stops the stack cleanly too)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):  # short waits keep signal delivery prompt
        pass


@stack_app.command("up")
def up(
    kafka_port: int = typer.Option(19092, help="Kafka client port (controller uses port + 1)."),
    es_port: int = typer.Option(19200, help="Elasticsearch HTTP port (transport uses port + 100)."),
    smtp_port: int = typer.Option(10025, help="SMTP sink port."),
    stack_dir: Optional[Path] = typer.Option(None, help="Data root; default $FEEDBACK_STACK_DIR or <tmp>/feedback-stack-<uid>."),
    keep_data: bool = typer.Option(False, "--keep-data", help="Keep topics, indices and mail from the last run."),
    detach: bool = typer.Option(False, "--detach", "-d", help="Leave the stack running; stop it with `feedback down`."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Start Kafka (KRaft), Elasticsearch and the SMTP sink on loopback."""
    from services.cli.devtools import dev_tool

    devstack = dev_tool("devstack")
    LocalStack, StackError = devstack.LocalStack, devstack.StackError

    _logging(verbose)
    stack = LocalStack(kafka_port=kafka_port, es_port=es_port, smtp_port=smtp_port,
                       stack_dir=stack_dir, keep_data=keep_data)
    try:
        stack.start()
    except StackError as exc:
        typer.secho(str(exc), fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Kafka          {stack.kafka_bootstrap}")
    typer.echo(f"Elasticsearch  {stack.es_url}")
    typer.echo(f"SMTP sink      {stack.smtp_host}:{stack.smtp_port}  (mailbox {stack.maildir}/new)")
    typer.echo(f"Data           {stack.stack_dir}")
    if stack.reused:
        typer.echo(f"Reused (already running): {', '.join(sorted(stack.reused))}")
    typer.echo("\n# point the services at it:")
    for key, value in stack.env().items():
        typer.echo(f"export {key}={value}")
    if detach:
        typer.echo("\nRunning in the background; stop it with `feedback down`.")
        return
    typer.echo("\nPress Ctrl-C to stop.")
    try:
        _wait_for_signal()
    finally:
        typer.echo("Stopping...")
        stack.stop()


@stack_app.command("down")
def down(
    stack_dir: Optional[Path] = typer.Option(None, help="Data root the stack was started with."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
) -> None:
    """Stop a stack started with `feedback up --detach`."""
    from services.cli.devtools import dev_tool

    devstack = dev_tool("devstack")
    default_stack_dir, stop_from_state = devstack.default_stack_dir, devstack.stop_from_state

    _logging(verbose)
    stopped = stop_from_state(stack_dir or default_stack_dir())
    typer.echo(f"Stopped: {', '.join(stopped)}" if stopped else "No running local stack found.")


@stack_app.command("smtp-sink")
def smtp_sink(
    port: int = typer.Option(10025, help="Port to listen on."),
    maildir: Path = typer.Option(Path("mail"), help="Folder that receives one .eml per message (in new/)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """Run only the SMTP sink in the foreground until Ctrl-C."""
    from services.cli.devtools import dev_tool

    serve_forever = dev_tool("devstack.smtp").serve_forever

    _logging(False)  # also quiets aiosmtpd's per-command "mail.log" lines
    serve_forever(maildir, port=port, host=host)


if __name__ == "__main__":
    stack_app()
