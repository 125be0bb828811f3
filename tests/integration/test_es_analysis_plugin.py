"""The test-only analysis plugin (deploy/local/es-analysis-plugin) on a real Elasticsearch 8.19.21.

Self-contained: builds the plugin with Maven (cached), installs it into a fresh copy of the
integ-test-zip distribution, starts a private node (as ``nobody`` when root) on 39200/39300
(or free ports), checks the ``finnish``/``swedish``/``english`` analyzers and the project's own
index template, and stops the node. It does not need the local stack.

Distribution: ``$FEEDBACK_ES_DIST_DIR`` (an extracted elasticsearch-8.19.21), else the zip in the
stack's cache (``$FEEDBACK_CACHE_DIR`` or ``~/.cache/feedback-pipeline``), downloaded there from
Maven Central if missing. Skips when java, mvn or the distribution is unavailable.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
PLUGIN_DIR = REPO / "deploy" / "local" / "es-analysis-plugin"
TEMPLATE = REPO / "schemas" / "elasticsearch" / "feedback-template.json"
ES_VERSION = "8.19.21"
ES_ZIP_URL = ("https://repo.maven.apache.org/maven2/org/elasticsearch/distribution/integ-test-zip/"
              f"elasticsearch/{ES_VERSION}/elasticsearch-{ES_VERSION}.zip")


def _load_build_module():
    spec = importlib.util.spec_from_file_location("es_analysis_plugin_build", PLUGIN_DIR / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


plugin = _load_build_module()


def _cache_dir() -> Path:
    if os.environ.get("FEEDBACK_CACHE_DIR"):
        return Path(os.environ["FEEDBACK_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "feedback-pipeline"


def _require_tools() -> None:
    if shutil.which("mvn") is None:
        pytest.skip("Maven (mvn) is not on PATH: cannot build the Elasticsearch analysis plugin")
    try:
        plugin.java_home()
    except plugin.PluginError as exc:
        pytest.skip(f"No Java 17 for Elasticsearch: {exc}")


def _es_zip() -> Path:
    """The distribution zip in the stack's cache, downloaded once (SHA-1 checked) if missing."""
    target = _cache_dir() / f"elasticsearch-{ES_VERSION}.zip"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    try:
        with urllib.request.urlopen(ES_ZIP_URL + ".sha1", timeout=60) as resp:
            expected = resp.read().decode().split()[0].strip().lower()
        digest = hashlib.sha1()
        with urllib.request.urlopen(ES_ZIP_URL, timeout=60) as resp, open(part, "wb") as out:
            while chunk := resp.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
    except (urllib.error.URLError, OSError) as exc:
        part.unlink(missing_ok=True)
        pytest.skip(f"Elasticsearch {ES_VERSION} distribution not cached and not downloadable: {exc}")
    if digest.hexdigest() != expected:
        part.unlink(missing_ok=True)
        pytest.fail(f"SHA-1 mismatch for {ES_ZIP_URL}")
    os.replace(part, target)
    return target


def _fresh_distribution(parent: Path) -> Path:
    """A private copy of the distribution under `parent` (which the test owns)."""
    source = os.environ.get("FEEDBACK_ES_DIST_DIR")
    home = parent / f"elasticsearch-{ES_VERSION}"
    if source:
        if not (Path(source) / "bin" / "elasticsearch").exists():
            pytest.skip(f"FEEDBACK_ES_DIST_DIR={source} is not an extracted Elasticsearch distribution")
        shutil.copytree(source, home, symlinks=True)
        return home
    with zipfile.ZipFile(_es_zip()) as zf:
        for info in zf.infolist():
            path = Path(zf.extract(info, parent))
            mode = (info.external_attr >> 16) & 0o777  # zipfile drops the Unix modes
            if mode:
                path.chmod(mode)
    return home


def _free_port(preferred: int) -> int:
    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for p in [path, *path.rglob("*")]:
        os.chown(p, uid, gid, follow_symlinks=False)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health?wait_for_status=yellow&timeout=1s", timeout=5) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the node's process group (launcher + server JVM), SIGKILL after 30 s."""
    for sig, wait in ((signal.SIGTERM, 30.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            proc.poll()
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.2)
    proc.poll()


@pytest.fixture(scope="module")
def plugin_zip() -> Path:
    _require_tools()
    return plugin.build_plugin(_cache_dir())


@pytest.fixture(scope="module")
def es_url(plugin_zip: Path):
    """A fresh single-node Elasticsearch with the plugin installed; stopped after the module."""
    # Not under pytest's tmp_path (/tmp/pytest-of-root is 0700): nobody must reach it.
    base = Path(tempfile.mkdtemp(prefix="es-plugin-check-", dir=tempfile.gettempdir()))
    proc = None
    try:
        base.chmod(0o755)
        home = _fresh_distribution(base)
        plugin.install_plugin(home, plugin_zip)
        plugin.install_plugin(home, plugin_zip)  # idempotent: second call is a no-op
        port, transport = _free_port(39200), _free_port(39300)
        url = f"http://127.0.0.1:{port}"
        cmd = [str(home / "bin" / "elasticsearch"),
               "-E", "discovery.type=single-node", "-E", "network.host=127.0.0.1",
               "-E", f"http.port={port}", "-E", f"transport.port={transport}",
               "-E", "xpack.security.enabled=false",
               "-E", "cluster.routing.allocation.disk.threshold_enabled=false"]
        env = dict(os.environ, ES_JAVA_HOME=str(plugin.java_home()), ES_JAVA_OPTS="-Xms512m -Xmx512m",
                   ES_TMPDIR=str(home / "tmp"), HOME=str(home))
        env.pop("ES_PATH_CONF", None)
        env.pop("JAVA_TOOL_OPTIONS", None)
        (home / "tmp").mkdir()
        if os.geteuid() == 0:  # Elasticsearch refuses to run as root
            nobody = pwd.getpwnam("nobody")
            _chown_tree(home, nobody.pw_uid, nobody.pw_gid)
            cmd = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", *cmd]
        log = base / "console.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=home, env=env, start_new_session=True)
        deadline = time.monotonic() + 240
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
                pytest.fail(f"Elasticsearch did not start (exit {proc.returncode}):\n{tail}")
            time.sleep(1.0)
        yield url
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(base, ignore_errors=True)


def test_plugin_zip_is_a_stable_plugin(plugin_zip: Path) -> None:
    with zipfile.ZipFile(plugin_zip) as zf:
        names = set(zf.namelist())
        components = json.loads(zf.read("named_components.json"))
        descriptor = zf.read("stable-plugin-descriptor.properties").decode()
    assert names == {f"{plugin.PLUGIN_NAME}-{ES_VERSION}.jar", "stable-plugin-descriptor.properties",
                     "named_components.json"}
    assert set(components["org.elasticsearch.plugin.analysis.AnalyzerFactory"]) == {"finnish", "swedish", "english"}
    assert set(components["org.elasticsearch.plugin.analysis.TokenFilterFactory"]) == {"stemmer", "snowball"}
    assert f"name={plugin.PLUGIN_NAME}" in descriptor
    assert f"elasticsearch.version={ES_VERSION}" in descriptor
    # Cached by source hash: a second build does not need Maven at all.
    assert plugin.build_plugin(_cache_dir(), mvn="/nonexistent/mvn") == plugin_zip


def test_language_analyzers(es_url: str) -> None:
    evidence = plugin.check_language_analyzers(es_url)
    assert evidence["finnish"] == ["jono", "jonot", "jono"]
    assert evidence["swedish"] == ["vänt", "vänt"]
    assert evidence["match_jono_hits"] == 1


def _text_analyzers(mapping: dict) -> dict:
    """{'text': analyzer, 'text.fi': analyzer, ...} for the `text` field of a mapping."""
    text = mapping["properties"]["text"]
    found = {"text": text.get("analyzer", "standard")}
    for name, sub in text.get("fields", {}).items():
        if sub.get("type") == "text":
            found[f"text.{name}"] = sub.get("analyzer", "standard")
    return found


def test_feedback_template_creates_index(es_url: str) -> None:
    """The project's index template (schemas/elasticsearch) creates an index unchanged, and the
    analyzers it names are the ones the index really uses."""
    template = {k: v for k, v in json.loads(TEMPLATE.read_text()).items() if not k.startswith("_comment")}
    template["index_patterns"] = ["plugin-check-feedback-v*"]
    declared = _text_analyzers(template["template"]["mappings"])
    index = "plugin-check-feedback-v1"
    req = plugin._request
    try:
        req(es_url, "PUT", "/_index_template/plugin-check-feedback", template)
        req(es_url, "PUT", f"/{index}", {})
        stored = req(es_url, "GET", f"/{index}/_mapping")[index]["mappings"]
        assert _text_analyzers(stored) == declared
        req(es_url, "PUT", f"/{index}/_doc/1?refresh=true", {"feedback_id": "1", "text": "Odotin pitkään jonossa"})
        for field, analyzer in declared.items():
            tokens = [t["token"] for t in req(es_url, "POST", f"/{index}/_analyze",
                                                {"field": field, "text": "jonossa"})["tokens"]]
            # On the index: the template's custom analyzers (finnish_light) are index-scoped.
            expected = [t["token"] for t in req(es_url, "POST", f"/{index}/_analyze",
                                                  {"analyzer": analyzer, "text": "jonossa"})["tokens"]]
            assert tokens == expected, (field, analyzer)
    finally:
        for path in (f"/{index}?ignore_unavailable=true", "/_index_template/plugin-check-feedback"):
            try:
                req(es_url, "DELETE", path)
            except plugin.PluginError:
                pass
