"""A real single-node Elasticsearch 8.19.21 on loopback, from Maven Central's integ-test-zip.

The ``integ-test-zip`` distribution is the Apache-2/SSPL server without the default
x-pack bundle and without a bundled JDK, so ``ES_JAVA_HOME`` must point at a Java 17+.

Known gaps of this distribution (it ships only the modules ``apm``, ``transport-netty4``,
``x-pack-core`` and ``x-pack-security``):

- no ``analysis-common`` module: no language analyzers such as ``finnish`` or ``swedish``
  (the ``standard`` analyzer works); tests that need them must skip or fall back;
- no ``reindex`` module: no ``_reindex``, ``_update_by_query`` or ``_delete_by_query``;
- no ``lang-painless``: no scripted updates or script queries;
- no ILM, data streams, RRF or security (security is disabled explicitly).
- ``GET /`` answers 405, so readiness is checked on ``/_cluster/health``.

The node gets ``path.repo`` = ``<instance dir>/snapshots`` and :func:`ensure_snapshot_repository`
registers the fs repository there (``feedback es snapshot`` / ``restore`` use it).

Elasticsearch refuses to run as root. When this process is root the server is started
as ``nobody`` through ``setpriv``; then the distribution, config, data and logs must
live in a folder ``nobody`` can reach (see :func:`default_es_root`), never under /root.
"""
from __future__ import annotations

import grp
import hashlib
import logging
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

from devstack._proc import StackError, java_home, log_tail, port_open, stop_group, wipe

log = logging.getLogger(__name__)

ES_VERSION = "8.19.21"
ES_URL = (
    "https://repo.maven.apache.org/maven2/org/elasticsearch/distribution/integ-test-zip/"
    f"elasticsearch/{ES_VERSION}/elasticsearch-{ES_VERSION}.zip"
)
_MARKER = ".complete"


def running_as_root() -> bool:
    return os.geteuid() == 0


def unprivileged_ids() -> tuple[int, int]:
    """uid and gid of the account Elasticsearch runs as when we are root."""
    uid = pwd.getpwnam("nobody").pw_uid
    for group in ("nogroup", "nobody"):
        try:
            return uid, grp.getgrnam(group).gr_gid
        except KeyError:
            continue
    return uid, pwd.getpwnam("nobody").pw_gid


def default_es_root(stack_dir: Path, cache_dir: Path) -> tuple[Path, Path]:
    """(distribution parent, instance parent) folders for Elasticsearch.

    As root both must be reachable by ``nobody``, so they go to
    ``<tmp>/feedback-stack-<uid>/elasticsearch`` whatever the stack dir is. Otherwise the
    extracted distribution is cached next to the zip (extracted once) and each instance's
    config, data and logs live under the stack dir.
    """
    if running_as_root():
        root = Path(tempfile.gettempdir()) / f"feedback-stack-{os.getuid()}" / "elasticsearch"
        return root, root
    return Path(cache_dir) / "elasticsearch", Path(stack_dir) / "elasticsearch"


def download_es_zip(cache_dir: Path, url: str = ES_URL) -> Path:
    """Download the distribution zip once into the cache, verified against Maven's .sha1."""
    cache_dir = Path(cache_dir)
    target = cache_dir / url.rsplit("/", 1)[1]
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    with httpx.Client(follow_redirects=True, timeout=httpx.Timeout(60.0)) as client:
        expected = client.get(url + ".sha1").raise_for_status().text.split()[0].strip().lower()
        part = target.with_name(target.name + ".part")
        digest = hashlib.sha1()
        log.info("Downloading Elasticsearch %s from %s", ES_VERSION, url)
        with client.stream("GET", url) as response:
            response.raise_for_status()
            total = int(response.headers.get("content-length") or 0) or None
            with open(part, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                               desc=f"elasticsearch-{ES_VERSION}.zip") as bar:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
    if digest.hexdigest() != expected:
        part.unlink(missing_ok=True)
        raise StackError(f"SHA-1 mismatch for {url}: got {digest.hexdigest()}, expected {expected}")
    os.replace(part, target)  # atomic: a partial download never looks complete
    return target


def _extract(zip_path: Path, dest_parent: Path) -> Path:
    """Extract the zip (keeping Unix modes, which zipfile drops) into dest_parent once."""
    home = dest_parent / f"elasticsearch-{ES_VERSION}"
    if (home / _MARKER).exists():
        return home
    dest_parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest_parent))
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for info in zf.infolist():
                path = Path(zf.extract(info, staging))
                mode = (info.external_attr >> 16) & 0o777
                if mode:
                    path.chmod(mode)
        extracted = staging / f"elasticsearch-{ES_VERSION}"
        (extracted / _MARKER).write_text(ES_VERSION + "\n")
        wipe(home)
        extracted.rename(home)
    finally:
        wipe(staging)
    return home


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)
    # The top folder last: its owner is the "already done" check in ensure_es_distribution.
    os.chown(path, uid, gid)


PLUGIN_BUILD = Path(__file__).resolve().parents[1] / "deploy" / "local" / "es-analysis-plugin" / "build.py"


def _analysis_plugin():
    """The test-only plugin that adds the finnish/swedish/english analyzers this zip lacks."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("es_analysis_plugin", PLUGIN_BUILD)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def ensure_es_distribution(cache_dir: Path, dist_parent: Path) -> Path:
    """Download (once) and extract (once) the distribution, with the analysis plugin; return ES_HOME."""
    zip_path = download_es_zip(cache_dir)
    home = _extract(zip_path, dist_parent)
    plugin = _analysis_plugin()
    # The index template uses the language analyzers production Elasticsearch has built in.
    plugin.install_plugin(home, plugin.build_plugin(cache_dir))
    if running_as_root():
        uid, gid = unprivileged_ids()
        if home.stat().st_uid != uid:
            _chown_tree(home, uid, gid)
        # Every folder above must be traversable by nobody (tempdir is; ours may not be).
        for parent in (dist_parent, dist_parent.parent):
            parent.chmod(parent.stat().st_mode | 0o755)
    return home


class ElasticsearchServer:
    """One Elasticsearch node with its own config copy, data, logs and tmp folder.

    Args:
        es_home: extracted distribution (see :func:`ensure_es_distribution`).
        instance_dir: per-node folder (``config/``, ``data/``, ``logs/``, ``tmp/``, ``console.log``).
        port / transport_port: HTTP and transport ports on ``host``.
    """

    def __init__(self, es_home: Path, instance_dir: Path, port: int = 19200, transport_port: int = 19300,
                 host: str = "127.0.0.1", heap: str = "512m") -> None:
        self.es_home = Path(es_home)
        self.instance_dir = Path(instance_dir)
        self.port = port
        self.transport_port = transport_port
        self.host = host
        self.heap = heap
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.instance_dir / "console.log"

    @property
    def snapshot_dir(self) -> Path:
        """``path.repo``: where the fs snapshot repository lives (wiped with the node's data)."""
        return self.instance_dir / "snapshots"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _prepare(self, fresh: bool) -> None:
        if fresh:
            wipe(self.instance_dir)
        self.instance_dir.mkdir(parents=True, exist_ok=True)
        # A private config dir (ES_PATH_CONF) so two nodes never share a keystore or settings.
        config = self.instance_dir / "config"
        if not config.exists():
            shutil.copytree(self.es_home / "config", config)
        for sub in ("data", "logs", "tmp", "snapshots"):
            (self.instance_dir / sub).mkdir(exist_ok=True)
        self.log_file.touch()
        if running_as_root():
            uid, gid = unprivileged_ids()
            _chown_tree(self.instance_dir, uid, gid)
            self.instance_dir.parent.chmod(self.instance_dir.parent.stat().st_mode | 0o755)

    def command(self) -> list[str]:
        """The command line that starts the node (wrapped in setpriv when root)."""
        d = self.instance_dir
        settings = {
            "discovery.type": "single-node",
            "cluster.name": "feedback-local",
            "node.name": f"feedback-local-{self.port}",
            "http.port": str(self.port),
            "transport.port": str(self.transport_port),
            "network.host": self.host,
            "xpack.security.enabled": "false",
            "path.data": str(d / "data"),
            "path.logs": str(d / "logs"),
            # Filesystem snapshot repositories may only live under path.repo.
            "path.repo": str(self.snapshot_dir),
            # Small CI disks are often >90 % full; do not let watermarks block writes.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
            # Tests delete indices by wildcard.
            "action.destructive_requires_name": "false",
        }
        cmd = [str(self.es_home / "bin" / "elasticsearch")]
        for key, value in settings.items():
            cmd += ["-E", f"{key}={value}"]
        if running_as_root():
            cmd = ["setpriv", "--reuid=nobody", "--regid=" + grp.getgrgid(unprivileged_ids()[1]).gr_name,
                   "--clear-groups", "env", f"HOME={d}", *cmd]
        return cmd

    def start(self, *, wait: bool = True, fresh: bool = True, timeout: float = 120.0) -> None:
        """Prepare folders, launch the node; wait until the cluster is yellow if `wait`."""
        if port_open(self.host, self.port) or port_open(self.host, self.transport_port):
            raise StackError(f"Port {self.port} or {self.transport_port} on {self.host} is already in use")
        self._prepare(fresh)
        env = dict(os.environ)
        env.update({
            "ES_JAVA_HOME": str(java_home()),  # the zip has no bundled JDK
            "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}",
            "ES_PATH_CONF": str(self.instance_dir / "config"),
            "ES_TMPDIR": str(self.instance_dir / "tmp"),  # else /tmp/elasticsearch-* litter
            # The launcher JVM probes flags with scratch dirs in java.io.tmpdir (/tmp/final-flags*).
            "CLI_JAVA_OPTS": f"-Djava.io.tmpdir={self.instance_dir / 'tmp'}",
        })
        env.pop("JAVA_TOOL_OPTIONS", None)
        log.info("Starting Elasticsearch on %s (log %s)", self.url, self.log_file)
        with open(self.log_file, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.instance_dir, env=env,
                                         start_new_session=True)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until ``/_cluster/health?wait_for_status=yellow`` answers 200."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"Elasticsearch exited with code {self.proc.returncode}:\n"
                                 f"{log_tail(self.log_file)}")
            if es_answers(self.url):
                if not self._serves_port():
                    raise StackError(f"Another Elasticsearch answers on {self.url}, not the one started here:\n"
                                     f"{log_tail(self.log_file)}")
                log.info("Elasticsearch is ready on %s", self.url)
                return
            time.sleep(1.0)
        raise StackError(f"Elasticsearch did not become ready on {self.url} within {timeout:.0f} s:\n"
                         f"{log_tail(self.log_file)}")

    def _serves_port(self) -> bool:
        # The node that answers must be the server JVM our launcher forked (same process
        # group), not another Elasticsearch that grabbed the port in the meantime.
        try:
            nodes = httpx.get(f"{self.url}/_nodes/_local/process", timeout=5.0).json()["nodes"]
            node_pid = int(next(iter(nodes.values()))["process"]["id"])
            return self.proc is not None and os.getpgid(node_pid) == self.proc.pid
        except (httpx.HTTPError, ValueError, KeyError, StopIteration, ProcessLookupError):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the launcher and its server JVM, SIGKILL after `timeout` seconds."""
        if self.proc is None:
            return
        log.info("Stopping Elasticsearch (pid %d)", self.proc.pid)
        stop_group(self.proc.pid, "Elasticsearch", timeout, self.proc)
        self.proc = None


def es_answers(url: str) -> bool:
    """Whether an Elasticsearch at `url` reports at least yellow health."""
    try:
        response = httpx.get(f"{url}/_cluster/health", params={"wait_for_status": "yellow", "timeout": "1s"},
                             timeout=5.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def ensure_snapshot_repository(url: str, name: str) -> bool:
    """Register the fs snapshot repository ``name`` at the node's ``path.repo`` unless it exists.

    Works for a node this process started and for a reused one, as long as it was started
    with ``path.repo``; returns False (and logs why) when it cannot.
    """
    try:
        with httpx.Client(base_url=url, timeout=30.0) as es:
            if es.get(f"/_snapshot/{name}").status_code == 200:
                return True
            nodes = es.get("/_nodes/_local/settings").raise_for_status().json()["nodes"]
            repo = next(iter(nodes.values()))["settings"].get("path", {}).get("repo")
            location = repo[0] if isinstance(repo, list) else repo
            if not location:
                log.warning("Elasticsearch on %s has no path.repo (started by older code?): "
                            "no snapshot repository %s", url, name)
                return False
            resp = es.put(f"/_snapshot/{name}", json={"type": "fs", "settings": {"location": location}})
            if resp.status_code != 200:
                log.warning("Registering snapshot repository %s failed: %s", name, resp.text[:500])
                return False
    except (httpx.HTTPError, ValueError, KeyError, StopIteration) as exc:
        log.warning("Registering snapshot repository %s on %s failed: %s", name, url, exc)
        return False
    log.info("Snapshot repository %s is registered on %s", name, url)
    return True
