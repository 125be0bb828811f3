"""Start the pipeline's services as child processes (for the demo and the tests)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from services.settings import SERVICE_PORTS, SERVICES

ALL_SERVICES = SERVICES  # start order: ingest first, workers after


@dataclass
class ServiceProcess:
    name: str
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self, timeout: float = 30.0, sig: int = signal.SIGTERM) -> int:
        """Stop it (SIGTERM by default) and return its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)


@dataclass
class ServiceGroup:
    """A set of running services sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    port_offset: int = 0
    running: dict[str, ServiceProcess] = field(default_factory=dict)

    def start(self, name: str, wait: bool = True, timeout: float = 120.0, instance: int = 0) -> ServiceProcess:
        """Start service ``name``; ``instance`` > 0 starts another replica of it (registered as
        ``name#instance``, on its port + 100 * instance), as a scaled-out deployment runs."""
        port = SERVICE_PORTS[name] + self.port_offset + 100 * instance
        key = f"{name}#{instance}" if instance else name
        # Development mode unless the caller's environment says otherwise: the local stack runs
        # on the built-in development keys, which a service refuses without it.
        env = {"FEEDBACK_DEV_MODE": "true", **os.environ, **self.env, "FEEDBACK_PORT": str(port)}
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{key.replace('#', '-')}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen([sys.executable, "-m", "services.cli", "run", name], env=env,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        sp = ServiceProcess(key, port, proc, log_path)
        self.running[key] = sp
        if wait:
            self.wait_healthy(sp, timeout)
        return sp

    def wait_healthy(self, sp: ServiceProcess, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sp.proc.poll() is not None:
                raise RuntimeError(f"{sp.name} exited with {sp.proc.returncode}; log:\n{tail(sp.log_path)}")
            if sp.healthy():
                return
            time.sleep(0.5)
        raise TimeoutError(f"{sp.name} not healthy after {timeout:.0f}s; log:\n{tail(sp.log_path)}")

    def start_all(self, names: tuple[str, ...] = ALL_SERVICES) -> None:
        for name in names:
            self.start(name, wait=False)
        for name in names:
            self.wait_healthy(self.running[name])

    def stop(self, name: str, sig: int = signal.SIGTERM) -> int:
        return self.running.pop(name).stop(sig=sig)

    def stop_all(self) -> dict[str, int]:
        return {name: self.stop(name) for name in list(self.running)[::-1]}


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
