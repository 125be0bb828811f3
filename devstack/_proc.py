"""Process and filesystem helpers shared by the local-stack servers."""
from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

# Documented last resort when neither JAVA_HOME nor `java` on PATH tells us where Java lives.
JVM_FALLBACK = Path("/usr/lib/jvm/java-17-openjdk-amd64")


class StackError(RuntimeError):
    """A local-stack server could not be prepared, started or stopped."""


def java_home() -> Path:
    """The Java installation to use: JAVA_HOME, else the one `java` on PATH resolves to."""
    env_home = os.environ.get("JAVA_HOME")
    if env_home and (Path(env_home) / "bin" / "java").exists():
        return Path(env_home)
    on_path = shutil.which("java")
    if on_path:
        # /usr/bin/java is usually a chain of symlinks into <home>/bin/java.
        return Path(os.path.realpath(on_path)).parent.parent
    if (JVM_FALLBACK / "bin" / "java").exists():
        return JVM_FALLBACK
    raise StackError("No Java found: set JAVA_HOME or put Java 17 on PATH.")


def java_bin() -> str:
    """Path of the `java` executable of :func:`java_home`."""
    return str(java_home() / "bin" / "java")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 40) -> str:
    """The last lines of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def group_alive(pgid: int) -> bool:
    """Whether any process of the process group still exists (zombies of ours excluded)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # A zombie still answers kill(0); /proc tells the truth on Linux.
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def cmdline(pid: int) -> str:
    """The command line of a process ('' if unknown), to check a pid before signalling it."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stop_group(pgid: int, name: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    """SIGTERM a process group we started, wait, then SIGKILL what is left.

    Every server is started with ``start_new_session=True`` so its pid is also the id of
    a group that holds its helpers (Elasticsearch's launcher forks the real JVM); signalling
    the group ends exactly the processes we started and nothing else.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        _reap(proc)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(proc)
        if not group_alive(pgid):
            return
        time.sleep(0.2)
    log.warning("%s did not stop within %.0f s after SIGTERM; sending SIGKILL", name, timeout)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and group_alive(pgid):
        _reap(proc)
        time.sleep(0.1)
    _reap(proc)


def _reap(proc: subprocess.Popen | None) -> None:
    # Our direct child stays a zombie (and keeps the group "alive") until waited for.
    if proc is not None:
        try:
            proc.wait(timeout=0)
        except subprocess.TimeoutExpired:
            pass


def wipe(path: Path) -> None:
    """Remove a folder tree if it exists."""
    if path.exists():
        shutil.rmtree(path)
