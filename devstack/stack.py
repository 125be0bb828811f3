"""The local stack: Kafka, Elasticsearch and an SMTP sink started together on loopback.

``LocalStack`` reuses servers that already answer on its ports (a stack from
``feedback up --detach``, or one a test session started), so tests and the demo never
start a second copy. It writes ``<stack_dir>/stack.json`` with pids and ports so that
``feedback down`` (:func:`stop_from_state`) can stop a detached stack.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from devstack._proc import StackError, cmdline, pid_alive, port_open, stop_group
from devstack.elasticsearch import (
    ElasticsearchServer,
    default_es_root,
    ensure_es_distribution,
    ensure_snapshot_repository,
    es_answers,
)
from devstack.kafka import KafkaServer, ensure_kafka_libs, kafka_answers
from devstack.smtp import SmtpServerProcess, smtp_answers

log = logging.getLogger(__name__)

STATE_FILE = "stack.json"
COMPONENTS = ("kafka", "elasticsearch", "smtp")
# A word each process's command line must contain before `down` signals a pid from the
# state file: pids are reused, and we must never kill an unrelated process.
_CMDLINE_MARKERS = {"kafka": "kafka.Kafka", "elasticsearch": "elasticsearch", "smtp": "devstack.smtp"}


def default_stack_dir() -> Path:
    """``$FEEDBACK_STACK_DIR``, else ``<tmp>/feedback-stack-<uid>``."""
    env = os.environ.get("FEEDBACK_STACK_DIR")
    return Path(env) if env else Path(tempfile.gettempdir()) / f"feedback-stack-{os.getuid()}"


def read_state(stack_dir: Path | None = None) -> dict[str, Any] | None:
    """The state file of a stack dir, or None if there is none (or it is unreadable)."""
    path = Path(stack_dir or default_stack_dir()) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def stop_from_state(stack_dir: Path | None = None, timeout: float = 30.0) -> list[str]:
    """Stop every process recorded in the state file (SMTP, ES, Kafka); return their names."""
    stack_dir = Path(stack_dir or default_stack_dir())
    state = read_state(stack_dir)
    if not state:
        return []
    stopped = []
    for name in reversed(COMPONENTS):
        entry = state.get("components", {}).get(name) or {}
        pid = entry.get("pid")
        if not pid or not pid_alive(pid):
            continue
        if _CMDLINE_MARKERS[name] not in cmdline(pid):
            log.warning("pid %d is no longer the %s of this stack; not signalling it", pid, name)
            continue
        log.info("Stopping %s (pid %d)", name, pid)
        stop_group(pid, name, timeout)
        stopped.append(name)
    (stack_dir / STATE_FILE).unlink(missing_ok=True)
    return stopped


class LocalStack:
    """Start (or reuse) Kafka, Elasticsearch and the SMTP sink; stop what it started.

    Args:
        kafka_port / kafka_controller_port: client and KRaft controller ports.
        es_port / es_transport_port: Elasticsearch HTTP and transport ports.
        smtp_port: SMTP sink port.
        stack_dir: data root (default :func:`default_stack_dir`).
        cache_dir: downloads (default ``settings.cache_dir``).
        keep_data: keep Kafka logs, ES data and the mailbox from the previous start.
        reuse: use servers that already answer on the ports instead of failing.
        components: which of ``kafka``, ``elasticsearch``, ``smtp`` to run.

    Use ``with LocalStack(...) as stack:`` or ``start()`` / ``stop()``.
    """

    def __init__(
        self,
        *,
        kafka_port: int = 19092,
        kafka_controller_port: int | None = None,
        es_port: int = 19200,
        es_transport_port: int | None = None,
        smtp_port: int = 10025,
        host: str = "127.0.0.1",
        stack_dir: Path | str | None = None,
        cache_dir: Path | str | None = None,
        keep_data: bool = False,
        reuse: bool = True,
        components: Iterable[str] = COMPONENTS,
    ) -> None:
        self.components = tuple(c for c in COMPONENTS if c in set(components))
        unknown = set(components) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"Unknown components: {sorted(unknown)}")
        self.host = host
        self.kafka_port = kafka_port
        self.kafka_controller_port = kafka_controller_port or kafka_port + 1
        self.es_port = es_port
        self.es_transport_port = es_transport_port or es_port + 100
        self.smtp_port = smtp_port
        self.stack_dir = Path(stack_dir) if stack_dir else default_stack_dir()
        if cache_dir is None:
            from services.settings import get_settings

            cache_dir = get_settings().cache_dir
        self.cache_dir = Path(cache_dir)
        self.keep_data = keep_data
        self.reuse = reuse
        self.maildir = self.stack_dir / f"mail-{smtp_port}"
        self.kafka: KafkaServer | None = None
        self.elasticsearch: ElasticsearchServer | None = None
        self.smtp: SmtpServerProcess | None = None
        self.reused: set[str] = set()
        self._started = False

    # --- endpoints ---------------------------------------------------------------
    @property
    def kafka_bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return f"http://{self.host}:{self.es_port}"

    @property
    def smtp_host(self) -> str:
        return self.host

    def env(self) -> dict[str, str]:
        """FEEDBACK_* variables that point settings at this stack."""
        env = {}
        if "kafka" in self.components:
            env["FEEDBACK_KAFKA_BOOTSTRAP"] = self.kafka_bootstrap
        if "elasticsearch" in self.components:
            env["FEEDBACK_ES_URL"] = self.es_url
        if "smtp" in self.components:
            env["FEEDBACK_SMTP_HOST"] = self.smtp_host
            env["FEEDBACK_SMTP_PORT"] = str(self.smtp_port)
        return env

    def pids(self) -> dict[str, int]:
        """Process (and process group) ids of the servers this object started."""
        servers = {"kafka": self.kafka, "elasticsearch": self.elasticsearch, "smtp": self.smtp}
        return {name: s.pid for name, s in servers.items() if s is not None and s.pid is not None}

    def _answers(self, name: str) -> bool:
        if name == "kafka":
            if not port_open(self.host, self.kafka_port):
                return False
            try:
                kafka_answers(self.kafka_bootstrap)
                return True
            except Exception:  # noqa: BLE001 - something else on the port, or a broken broker
                return False
        if name == "elasticsearch":
            return es_answers(self.es_url)
        return smtp_answers(self.host, self.smtp_port)

    # --- lifecycle -----------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> "LocalStack":
        """Start the missing servers (concurrently) and wait until all answer."""
        if self._started:
            return self
        self.stack_dir.mkdir(parents=True, exist_ok=True)
        previous = read_state(self.stack_dir) or {}
        to_start = []
        for name in self.components:
            if self.reuse and self._answers(name):
                log.info("Reusing the %s already running on its port", name)
                self.reused.add(name)
                if name == "smtp":  # the running sink writes where its state says
                    old = previous.get("components", {}).get("smtp") or {}
                    if old.get("port") == self.smtp_port and old.get("maildir"):
                        self.maildir = Path(old["maildir"])
            else:
                to_start.append(name)

        fresh = not self.keep_data
        try:
            # Downloads first, so a failing download leaves nothing running.
            if "kafka" in to_start:
                libs = ensure_kafka_libs(self.cache_dir)
                self.kafka = KafkaServer(libs, self.stack_dir / f"kafka-{self.kafka_port}", self.kafka_port,
                                         self.kafka_controller_port, host=self.host)
            if "elasticsearch" in to_start:
                dist_parent, instance_parent = default_es_root(self.stack_dir, self.cache_dir)
                es_home = ensure_es_distribution(self.cache_dir, dist_parent)
                self.elasticsearch = ElasticsearchServer(es_home, instance_parent / f"node-{self.es_port}",
                                                         self.es_port, self.es_transport_port, host=self.host)
            if "smtp" in to_start:
                self.smtp = SmtpServerProcess(self.maildir, self.stack_dir / f"smtp-{self.smtp_port}.log",
                                              self.smtp_port, host=self.host)
            # Launch everything, then wait: the JVMs start in parallel (ES is the slow one).
            servers = [s for s in (self.kafka, self.elasticsearch, self.smtp) if s is not None]
            for server in servers:
                server.start(wait=False, fresh=fresh)
            deadline = time.monotonic() + timeout
            for server in servers:
                server.wait_ready(max(1.0, deadline - time.monotonic()))
        except BaseException:
            self._stop_owned()
            raise
        self._started = True
        if "elasticsearch" in self.components:
            from services.settings import get_settings

            # One repository name for the stack and the `feedback es snapshot/restore` commands.
            ensure_snapshot_repository(self.es_url, get_settings().snapshot_repository)
        if servers:
            self._write_state(previous)
        return self

    def _write_state(self, previous: dict[str, Any]) -> None:
        components = dict(previous.get("components", {}))
        for name in self.reused:
            components.setdefault(name, {})
        if self.kafka and self.kafka.pid:
            components["kafka"] = {"pid": self.kafka.pid, "port": self.kafka_port,
                                   "controller_port": self.kafka_controller_port,
                                   "log": str(self.kafka.log_file)}
        if self.elasticsearch and self.elasticsearch.pid:
            components["elasticsearch"] = {"pid": self.elasticsearch.pid, "port": self.es_port,
                                           "transport_port": self.es_transport_port,
                                           "log": str(self.elasticsearch.log_file)}
        if self.smtp and self.smtp.pid:
            components["smtp"] = {"pid": self.smtp.pid, "port": self.smtp_port, "maildir": str(self.maildir),
                                  "log": str(self.smtp.log_file)}
        state = {"stack_dir": str(self.stack_dir), "host": self.host, "env": self.env(),
                 "components": {k: v for k, v in components.items() if v}}
        _write_json_atomic(self.stack_dir / STATE_FILE, state)

    def _stop_owned(self) -> None:
        # Reverse start order: nothing should still be writing to Kafka when it goes.
        for attr in ("smtp", "elasticsearch", "kafka"):
            server = getattr(self, attr)
            if server is None:
                continue
            try:
                server.stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("Stopping %s failed", attr)

    def stop(self) -> None:
        """Stop the servers this object started (reused ones keep running)."""
        owned = self.pids()
        self._stop_owned()
        self._started = False
        state = read_state(self.stack_dir)
        if state and owned:
            comps = {k: v for k, v in state.get("components", {}).items()
                     if not (k in owned and v.get("pid") == owned[k])}
            if any(v.get("pid") for v in comps.values()):
                state["components"] = comps
                _write_json_atomic(self.stack_dir / STATE_FILE, state)
            else:
                (self.stack_dir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
