"""A real SMTP sink (aiosmtpd) that stores every received message as an .eml file.

The mailbox is maildir-like: a message is written to ``<maildir>/tmp/`` and renamed into
``<maildir>/new/`` so a reader never sees half a message. File names start with a
nanosecond timestamp, so sorting them gives arrival order.

Run alone: ``python -m devstack.smtp --port 10025 --maildir /tmp/mail``.
"""
from __future__ import annotations

import argparse
import email.policy
import itertools
import logging
import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from devstack._proc import StackError, log_tail, port_open, stop_group, wipe

log = logging.getLogger(__name__)

_counter = itertools.count()
# Recipients at this reserved domain are refused at RCPT with a reply that echoes the
# address, as real relays do: tests use it to check that a receipt keeps only the code.
REFUSED_DOMAIN = "refused.invalid"
_REPO_ROOT = Path(__file__).resolve().parents[1]


class MaildirHandler:
    """aiosmtpd handler: one .eml per accepted message, with the envelope in X-Envelope-* headers."""

    def __init__(self, maildir: Path) -> None:
        self.maildir = Path(maildir)
        for sub in ("tmp", "new"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.lower().endswith("@" + REFUSED_DOMAIN):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        # Envelope recipients differ from To/Cc (Bcc); keep them so tests can check delivery.
        header = (f"X-Envelope-From: {envelope.mail_from}\r\n"
                  f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode("utf-8")
        name = f"{time.time_ns()}.{os.getpid()}.{next(_counter)}.eml"
        tmp = self.maildir / "tmp" / name
        with open(tmp, "wb") as out:
            out.write(header + content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.maildir / "new" / name)
        log.info("Stored message from %s to %s as %s", envelope.mail_from, envelope.rcpt_tos, name)
        return "250 Message accepted for delivery"


def read_mailbox(folder: Path | str) -> list[EmailMessage]:
    """Every message stored by :class:`MaildirHandler` in `folder`, oldest first."""
    new = Path(folder) / "new"
    if not new.is_dir():
        return []
    parser = BytesParser(policy=email.policy.default)
    messages = []
    for path in sorted(new.glob("*.eml"), key=lambda p: (int(p.name.split(".", 1)[0]), p.name)):
        with open(path, "rb") as fh:
            messages.append(parser.parse(fh))
    return messages


class SmtpSink:
    """An in-process SMTP sink on a background thread (aiosmtpd ``Controller``).

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self, maildir: Path, port: int = 10025, host: str = "127.0.0.1") -> None:
        self.maildir = Path(maildir)
        self.host = host
        self.port = port
        self.handler = MaildirHandler(self.maildir)
        # SMTPUTF8 so Finnish and Swedish names in addresses are accepted as sent.
        # The pid in the greeting lets a parent check that the sink answering is its own.
        self.controller = Controller(self.handler, hostname=host, port=port, enable_SMTPUTF8=True,
                                     ident=f"feedback-smtp-sink pid={os.getpid()}")

    def start(self) -> "SmtpSink":
        self.controller.start()
        log.info("SMTP sink listening on %s:%d, mailbox %s", self.host, self.port, self.maildir)
        return self

    def stop(self) -> None:
        self.controller.stop()

    def messages(self) -> list[EmailMessage]:
        return read_mailbox(self.maildir)

    def __enter__(self) -> "SmtpSink":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def smtp_greeting(host: str, port: int, timeout: float = 2.0) -> str | None:
    """The greeting of an SMTP server on host:port that also answers NOOP, else None."""
    try:
        client = smtplib.SMTP(timeout=timeout)
        code, banner = client.connect(host, port)
        try:
            if code == 220 and client.noop()[0] == 250:
                return banner.decode(errors="replace")
        finally:
            client.close()
    except (OSError, smtplib.SMTPException):
        pass
    return None


def smtp_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an SMTP server on host:port greets and answers NOOP."""
    return smtp_greeting(host, port, timeout) is not None


class SmtpServerProcess:
    """The SMTP sink as a separate process (``python -m devstack.smtp``).

    A process rather than a thread so that ``feedback up --detach`` can leave it running
    and ``feedback down`` can stop it by pid like the JVMs.
    """

    def __init__(self, maildir: Path, log_file: Path, port: int = 10025, host: str = "127.0.0.1") -> None:
        self.maildir = Path(maildir)
        self.log_file = Path(log_file)
        self.port = port
        self.host = host
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, *, wait: bool = True, fresh: bool = True, timeout: float = 30.0) -> None:
        """Launch the sink; wait until it answers NOOP if `wait`."""
        if port_open(self.host, self.port):
            raise StackError(f"Port {self.port} on {self.host} is already in use")
        if fresh:
            wipe(self.maildir)
        self.maildir.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        # The repository may not be pip-installed; make `services` importable in the child.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_REPO_ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "devstack.smtp", "--host", self.host,
               "--port", str(self.port), "--maildir", str(self.maildir)]
        log.info("Starting SMTP sink on %s:%d (log %s)", self.host, self.port, self.log_file)
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until the sink answers NOOP; raise with the log tail if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"SMTP sink exited with code {self.proc.returncode}:\n{log_tail(self.log_file)}")
            greeting = smtp_greeting(self.host, self.port)
            if greeting is not None:
                if self.proc is not None and f"pid={self.proc.pid}" not in greeting:
                    raise StackError(f"Another SMTP server answers on {self.host}:{self.port}: {greeting!r}")
                log.info("SMTP sink is ready on %s:%d", self.host, self.port)
                return
            time.sleep(0.2)
        raise StackError(f"SMTP sink did not answer on {self.host}:{self.port} within {timeout:.0f} s:\n"
                         f"{log_tail(self.log_file)}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the sink, SIGKILL after `timeout` seconds."""
        if self.proc is None:
            return
        log.info("Stopping SMTP sink (pid %d)", self.proc.pid)
        stop_group(self.proc.pid, "SMTP sink", timeout, self.proc)
        self.proc = None


def serve_forever(maildir: Path, port: int = 10025, host: str = "127.0.0.1") -> None:
    """Run a sink in the foreground until SIGINT or SIGTERM."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with SmtpSink(maildir, port=port, host=host):
            print(f"SMTP sink on {host}:{port}, mailbox {Path(maildir).resolve()}", flush=True)
            while not stop.wait(1.0):  # short waits keep signal handling prompt
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=10025)
    parser.add_argument("--maildir", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command
    serve_forever(args.maildir, port=args.port, host=args.host)


if __name__ == "__main__":
    main()
