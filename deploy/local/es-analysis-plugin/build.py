"""Build, install and check the TEST-ONLY Elasticsearch plugin `local-language-analyzers`.

The plugin (Java sources and pom.xml next to this file) gives the integ-test-zip
distribution of Elasticsearch 8.19.21 the analyzers ``finnish``, ``swedish`` and
``english`` and the token filters ``stemmer`` and ``snowball``, which production
Elasticsearch has built in. See README.md.

Standard library only, so the local stack can load it without installing anything::

    import importlib.util
    spec = importlib.util.spec_from_file_location("es_analysis_plugin", ".../deploy/local/es-analysis-plugin/build.py")
    plugin = importlib.util.module_from_spec(spec); spec.loader.exec_module(plugin)
    zip_path = plugin.build_plugin(cache_dir)          # mvn once, then cached
    plugin.install_plugin(es_home, zip_path)           # before the first start; idempotent
    ...start Elasticsearch...
    plugin.check_language_analyzers("http://127.0.0.1:19200")   # optional smoke check
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent
PLUGIN_NAME = "local-language-analyzers"
ES_VERSION = "8.19.21"
ANALYZERS = ("finnish", "swedish", "english")
TOKEN_FILTERS = ("stemmer", "snowball")
# What the zip must hold at its root (Elasticsearch's stable plugin layout).
_ZIP_ENTRIES = {f"{PLUGIN_NAME}-{ES_VERSION}.jar", "stable-plugin-descriptor.properties", "named_components.json"}
# Documented last resort when neither JAVA_HOME nor `java` on PATH tells where Java lives.
_JVM_FALLBACK = Path("/usr/lib/jvm/java-17-openjdk-amd64")


class PluginError(RuntimeError):
    """The plugin could not be built, installed or checked."""


# --------------------------------------------------------------------------- build


def _source_files(project_dir: Path) -> list[Path]:
    """Every file that goes into the build: pom.xml and src/** (target/ etc. excluded)."""
    files = [project_dir / "pom.xml"]
    files += sorted(p for p in (project_dir / "src").rglob("*") if p.is_file())
    return files


def source_hash(project_dir: Path = PROJECT_DIR) -> str:
    """SHA-256 over the relative paths and contents of pom.xml and src/**."""
    digest = hashlib.sha256()
    for path in _source_files(project_dir):
        rel = path.relative_to(project_dir).as_posix().encode()
        data = path.read_bytes()
        digest.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def build_plugin(cache_dir: Path, *, mvn: str | None = None, project_dir: Path = PROJECT_DIR) -> Path:
    """Build the plugin zip with Maven once and return its path in the cache.

    The zip lands at ``<cache_dir>/es-analysis-plugin/local-language-analyzers-8.19.21-<hash>.zip``,
    the hash covering pom.xml and src/**; a cached zip is returned without running Maven.
    Maven runs on a copy of the sources in a temporary folder under the cache, so the source
    tree gets no ``target/`` and concurrent callers do not collide. The first build needs
    Maven Central (plugins and the provided jars); later builds work offline from ~/.m2.

    Raises:
        PluginError: Maven is missing or the build failed (with the end of its output).
    """
    out_dir = Path(cache_dir) / "es-analysis-plugin"
    target = out_dir / f"{PLUGIN_NAME}-{ES_VERSION}-{source_hash(project_dir)[:16]}.zip"
    if target.is_file():
        return target
    mvn = mvn or shutil.which("mvn")
    if mvn is None:
        raise PluginError("Maven (`mvn`) is needed to build the Elasticsearch analysis plugin; put it on PATH.")
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".build-", dir=out_dir))
    try:
        shutil.copy2(project_dir / "pom.xml", work / "pom.xml")
        shutil.copytree(project_dir / "src", work / "src")
        env = dict(os.environ)
        env.setdefault("JAVA_HOME", str(java_home()))
        result = subprocess.run([mvn, "-q", "-B", "package", "-f", str(work / "pom.xml")],
                                cwd=work, env=env, capture_output=True, text=True)
        built = work / "target" / f"{PLUGIN_NAME}-{ES_VERSION}.zip"
        if result.returncode != 0 or not built.is_file():
            raise PluginError(f"Maven failed ({result.returncode}) building {PLUGIN_NAME}:\n"
                              f"{(result.stdout + result.stderr)[-4000:]}")
        with zipfile.ZipFile(built) as zf:
            names = set(zf.namelist())
        if names != _ZIP_ENTRIES:
            raise PluginError(f"Unexpected plugin zip content {sorted(names)}, expected {sorted(_ZIP_ENTRIES)}")
        partial = target.with_name(target.name + ".part")
        shutil.copyfile(built, partial)
        os.replace(partial, target)  # atomic: a half-copied zip never looks cached
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


# --------------------------------------------------------------------------- install


def java_home() -> Path:
    """The JDK for Elasticsearch's tools: ES_JAVA_HOME, JAVA_HOME, `java` on PATH, or the Debian default."""
    for var in ("ES_JAVA_HOME", "JAVA_HOME"):
        home = os.environ.get(var)
        if home and (Path(home) / "bin" / "java").exists():
            return Path(home)
    on_path = shutil.which("java")
    if on_path:
        return Path(os.path.realpath(on_path)).parent.parent  # /usr/bin/java -> <home>/bin/java
    if (_JVM_FALLBACK / "bin" / "java").exists():
        return _JVM_FALLBACK
    raise PluginError("No Java found: set ES_JAVA_HOME or JAVA_HOME, or put Java 17 on PATH.")


def _plugin_name(zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path) as zf:
        text = zf.read("stable-plugin-descriptor.properties").decode("utf-8")
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "name":
            return value.strip()
    raise PluginError(f"No name= in the descriptor of {zip_path}")


def install_plugin(es_home: Path, zip_path: Path) -> None:
    """Install the plugin zip into the extracted distribution at `es_home`; idempotent.

    Does nothing when ``<es_home>/plugins/<plugin name>`` exists already. Elasticsearch
    reads plugins only at startup, so install before the (first) start. Runs
    ``bin/elasticsearch-plugin install --batch file://<zip>`` with ES_JAVA_HOME set (the
    integ-test-zip has no bundled JDK). When run as root into a distribution owned by
    another user (``nobody``, who runs Elasticsearch), the new plugin folder is given to
    that owner too.

    Raises:
        PluginError: the installer failed (with its output).
    """
    es_home = Path(es_home)
    zip_path = Path(zip_path).resolve()
    name = _plugin_name(zip_path)
    plugin_dir = es_home / "plugins" / name
    if plugin_dir.exists():
        return
    env = dict(os.environ)
    env["ES_JAVA_HOME"] = env.get("ES_JAVA_HOME") or str(java_home())
    env.pop("JAVA_TOOL_OPTIONS", None)  # its banner on stderr confuses the CLI launcher
    env.pop("ES_PATH_CONF", None)  # install against the distribution's own config/
    cmd = [str(es_home / "bin" / "elasticsearch-plugin"), "install", "--batch", zip_path.as_uri()]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0 or not plugin_dir.is_dir():
        raise PluginError(f"Installing {name} into {es_home} failed ({result.returncode}):\n"
                          f"{(result.stdout + result.stderr)[-4000:]}")
    owner = es_home.stat()
    if os.geteuid() == 0 and owner.st_uid != 0:
        for path in [plugin_dir, *plugin_dir.rglob("*")]:
            os.chown(path, owner.st_uid, owner.st_gid, follow_symlinks=False)


# --------------------------------------------------------------------------- check


def _request(base_url: str, method: str, path: str, body: dict | None = None, timeout: float = 30.0) -> dict:
    data = None if body is None else json.dumps(body).encode("utf-8")
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise PluginError(f"{method} {path} -> HTTP {exc.code}: {exc.read().decode('utf-8', 'replace')[:2000]}") from exc


def _tokens(base_url: str, body: dict) -> list[str]:
    return [t["token"] for t in _request(base_url, "POST", "/_analyze", body)["tokens"]]


def check_language_analyzers(base_url: str, index: str = "es-analysis-plugin-check") -> dict:
    """Smoke-check the ``finnish``/``swedish``/``english`` analyzers on a running Elasticsearch.

    Works the same on production (built-in analyzers) and on the local stack (this plugin):
    it checks behaviour, not where it comes from. Creates and finally deletes `index`.
    Returns the evidence (token lists and the search hit count).

    Raises:
        PluginError: an analyzer is missing or does not stem as expected.
    """
    result: dict = {}

    def expect(ok: bool, what: str) -> None:
        if not ok:
            raise PluginError(f"{what}; evidence so far: {json.dumps(result, ensure_ascii=False)}")

    fi = result["finnish"] = _tokens(base_url, {"analyzer": "finnish", "text": "jonossa jonotin jonoon"})
    expect(len(fi) == 3 and fi[0] == fi[2] and all(t.startswith("jon") for t in fi),
           "finnish analyzer does not reduce 'jonossa jonoon' to one stem")
    sv = result["swedish"] = _tokens(base_url, {"analyzer": "swedish", "text": "väntade väntar"})
    expect(len(sv) == 2 and sv[0] == sv[1], "swedish analyzer does not reduce 'väntade väntar' to one stem")
    en = result["english"] = _tokens(base_url, {"analyzer": "english", "text": "The queues were queueing"})
    expect(en == ["queue", "were", "queue"], "english analyzer does not stem or drop the stop word 'the'")
    st = result["stemmer_light_finnish"] = _tokens(base_url, {
        "tokenizer": "standard", "filter": ["lowercase", {"type": "stemmer", "language": "light_finnish"}],
        "text": "Jonossa jonoon"})
    expect(len(st) == 2 and st[0] == st[1], "stemmer token filter (light_finnish) does not stem")

    _request(base_url, "DELETE", f"/{index}?ignore_unavailable=true")
    try:
        _request(base_url, "PUT", f"/{index}", {
            "settings": {"number_of_shards": 1, "number_of_replicas": 0,
                         "analysis": {
                             "filter": {"fi_snowball": {"type": "snowball", "language": "Finnish"}},
                             "analyzer": {"fi_snowball": {"type": "custom", "tokenizer": "standard",
                                                          "filter": ["lowercase", "fi_snowball"]}}}},
            "mappings": {"properties": {"text": {"type": "text", "analyzer": "finnish", "fields": {
                "sv": {"type": "text", "analyzer": "swedish"},
                "en": {"type": "text", "analyzer": "english"},
                "snow": {"type": "text", "analyzer": "fi_snowball"}}}}},
        })
        text = _request(base_url, "GET", f"/{index}/_mapping")[index]["mappings"]["properties"]["text"]
        result["mapping_analyzers"] = {"text": text.get("analyzer"),
                                       **{f"text.{k}": v.get("analyzer") for k, v in text["fields"].items()}}
        expect(result["mapping_analyzers"] == {"text": "finnish", "text.sv": "swedish", "text.en": "english",
                                               "text.snow": "fi_snowball"},
               "the stored mapping does not name the analyzers it was created with")
        _request(base_url, "PUT", f"/{index}/_doc/1?refresh=true", {"text": "Odotin pitkään jonossa"})
        _request(base_url, "PUT", f"/{index}/_doc/2?refresh=true", {"text": "Jag väntade länge"})
        hits = _request(base_url, "POST", f"/{index}/_search", {"query": {"match": {"text.sv": "väntar"}}})
        result["match_vantar_hits"] = hits["hits"]["total"]["value"]
        expect(result["match_vantar_hits"] == 1, "match query 'väntar' on text.sv does not find 'väntade'")
        hits = _request(base_url, "POST", f"/{index}/_search", {"query": {"match": {"text": "jono"}}})
        result["match_jono_hits"] = hits["hits"]["total"]["value"]
        expect(result["match_jono_hits"] == 1, "match query 'jono' does not find the doc with 'jonossa'")
        hits = _request(base_url, "POST", f"/{index}/_search", {"query": {"match": {"text.snow": "jonoon"}}})
        result["match_snowball_hits"] = hits["hits"]["total"]["value"]
        expect(result["match_snowball_hits"] == 1, "snowball(Finnish) custom analyzer does not match 'jonoon'")
    finally:
        try:
            _request(base_url, "DELETE", f"/{index}?ignore_unavailable=true")
        except (PluginError, OSError):
            pass
    return result
