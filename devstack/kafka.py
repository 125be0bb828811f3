"""A real single-node Apache Kafka 4.4.0 broker (KRaft combined mode) on loopback.

The jars come from Maven Central through ``mvn dependency:copy-dependencies`` with
``deploy/local/kafka-pom.xml``; no Kafka tarball and no Docker are needed, only Java 17.
"""
from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

from devstack._proc import StackError, java_bin, log_tail, port_open, stop_group, wipe

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
POM_PATH = Path(__file__).resolve().parents[1] / "deploy" / "local" / "kafka-pom.xml"
_MARKER = ".complete"

# log4j2 configuration (Kafka 4 dropped log4j 1/reload4j), in log4j-core's own properties
# format so no YAML or XML parser is needed: everything to stdout, which the caller sends
# to a file. Without it log4j2 falls back to ERROR-only and a failed start says nothing.
_LOG4J2 = """\
status = warn
name = feedback-localstack-kafka
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = INFO
"""


def kafka_libs_dir(cache_dir: Path) -> Path:
    """Where the Kafka jars live inside the cache."""
    return Path(cache_dir) / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_kafka_libs(cache_dir: Path, pom: Path = POM_PATH) -> Path:
    """Download the Kafka runtime jars once into ``<cache_dir>/kafka-<version>/libs``.

    A marker file is written only after Maven succeeded, so an interrupted download is
    retried from scratch instead of leaving a half class path that fails at run time.
    """
    libs = kafka_libs_dir(cache_dir)
    if (libs / _MARKER).exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError("Maven (`mvn`) is needed once to download the Kafka jars; install it or put it on PATH.")
    staging = libs.with_name("libs.partial")
    wipe(staging)
    staging.mkdir(parents=True)
    log.info("Downloading Kafka %s jars with Maven into %s (about a minute, once)", KAFKA_VERSION, libs)
    cmd = [
        mvn, "-q", "-B", "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime", "-f", str(pom),
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise StackError(f"Maven failed ({result.returncode}) downloading Kafka jars:\n"
                         f"{(result.stdout + result.stderr)[-4000:]}")
    if not list(staging.glob("kafka_2.13-*.jar")):
        raise StackError(f"Maven finished but no kafka_2.13 jar is in {staging}")
    (staging / _MARKER).write_text(KAFKA_VERSION + "\n")
    wipe(libs)
    staging.rename(libs)  # atomic within one file system
    return libs


def random_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 without padding (Kafka's Uuid format)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka avoids ids that look like command-line flags
            return text


class KafkaServer:
    """One Kafka process acting as both broker and KRaft controller.

    Args:
        libs: folder with the Kafka jars (see :func:`ensure_kafka_libs`).
        work_dir: holds server.properties, log4j2.properties, the server log and ``data/``.
        port: PLAINTEXT listener for clients.
        controller_port: CONTROLLER listener for the KRaft quorum.
    """

    def __init__(self, libs: Path, work_dir: Path, port: int = 19092, controller_port: int = 19093,
                 host: str = "127.0.0.1", heap: str = "512m") -> None:
        self.libs = Path(libs)
        self.work_dir = Path(work_dir)
        self.port = port
        self.controller_port = controller_port
        self.host = host
        self.heap = heap
        self.proc: subprocess.Popen | None = None
        self.cluster_id: str | None = None

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string for clients."""
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "server.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def _classpath(self) -> str:
        return f"{self.libs}/*"

    def write_config(self) -> Path:
        """Write server.properties and log4j2.properties; return the server.properties path."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            # A dynamic (KIP-853) quorum, Kafka 4's default: the storage is formatted with
            # --standalone, which refuses the static controller.quorum.voters.
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            # Topics are created explicitly by services.topics; a typo must fail, not create.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",  # default 50 costs seconds on 2 cores
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "log.dirs": str(self.data_dir),
            # Let compaction tests see results within seconds instead of the 15 s default.
            "log.cleaner.backoff.ms": "500",
            "log.retention.check.interval.ms": "5000",
        }
        path = self.work_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.log_config.write_text(_LOG4J2)
        return path

    @property
    def log_config(self) -> Path:
        return self.work_dir / "log4j2.properties"

    def _java(self, *args: str) -> list[str]:
        return [java_bin(), f"-Dlog4j2.configurationFile={self.log_config}",
                "-cp", self._classpath(), *args]

    def format_storage(self, cluster_id: str | None = None) -> None:
        """Format the KRaft metadata log; an already formatted data dir (keep_data) is kept."""
        meta_path = self.data_dir / "meta.properties"
        if not meta_path.exists():
            config = self.work_dir / "server.properties"
            # --standalone: this one node is the whole controller quorum (its first voter).
            cmd = self._java("kafka.tools.StorageTool", "format", "-t", cluster_id or random_cluster_id(),
                             "-c", str(config), "--standalone")
            result = subprocess.run(cmd, capture_output=True, text=True)
            if result.returncode != 0:
                raise StackError(f"Kafka storage format failed:\n{(result.stdout + result.stderr)[-4000:]}")
        # The id on disk is the truth (kept data keeps its id); wait_ready compares against it.
        meta = meta_path.read_text()
        self.cluster_id = next(line.split("=", 1)[1].strip() for line in meta.splitlines()
                               if line.startswith("cluster.id="))

    def start(self, *, wait: bool = True, fresh: bool = True, timeout: float = 90.0) -> None:
        """Write config, format storage, launch the broker; wait until it serves if `wait`."""
        if port_open(self.host, self.port) or port_open(self.host, self.controller_port):
            raise StackError(f"Port {self.port} or {self.controller_port} on {self.host} is already in use")
        if fresh:
            wipe(self.data_dir)
        self.write_config()
        self.format_storage()
        cmd = [java_bin(), f"-Xmx{self.heap}", "-Xms128m", "-XX:+UseG1GC", "-Djava.awt.headless=true",
               f"-Dlog4j2.configurationFile={self.log_config}",
               "-cp", self._classpath(), "kafka.Kafka", str(self.work_dir / "server.properties")]
        log.info("Starting Kafka on %s (log %s)", self.bootstrap, self.log_file)
        with open(self.log_file, "ab") as out:
            # Own session: survives `feedback up --detach`, and stop() can signal the whole group.
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         cwd=self.work_dir, start_new_session=True)
        if wait:
            self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 90.0) -> None:
        """Block until a Kafka admin client can list topics; raise with the log tail if not."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"Kafka exited with code {self.proc.returncode}:\n{log_tail(self.log_file)}")
            if port_open(self.host, self.port):
                try:
                    cluster_id = kafka_cluster_id(self.bootstrap)
                except Exception as exc:  # noqa: BLE001 - any client error means "not yet"
                    last_error = exc
                else:
                    # Another broker may have taken the port after our check: compare ids.
                    if self.cluster_id and cluster_id != self.cluster_id:
                        raise StackError(f"Another Kafka (cluster {cluster_id}) answers on {self.bootstrap}, "
                                         f"not the one started here:\n{log_tail(self.log_file)}")
                    log.info("Kafka is ready on %s", self.bootstrap)
                    return
            time.sleep(0.5)
        raise StackError(f"Kafka did not become ready on {self.bootstrap} within {timeout:.0f} s "
                         f"(last error: {last_error!r}):\n{log_tail(self.log_file)}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the broker (a clean controlled shutdown), SIGKILL after `timeout` seconds."""
        if self.proc is None:
            return
        log.info("Stopping Kafka (pid %d)", self.proc.pid)
        stop_group(self.proc.pid, "Kafka", timeout, self.proc)
        self.proc = None


def kafka_answers(bootstrap: str, timeout_ms: int = 5000) -> list[str]:
    """List topics through a kafka-python admin client; raises if the broker does not answer."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                             bootstrap_timeout_ms=timeout_ms, client_id="feedback-localstack-health")
    try:
        return list(admin.list_topics())
    finally:
        admin.close()


def kafka_cluster_id(bootstrap: str, timeout_ms: int = 5000) -> str:
    """The cluster id a broker reports; raises if it does not answer."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms,
                             bootstrap_timeout_ms=timeout_ms, client_id="feedback-localstack-health")
    try:
        admin.list_topics()  # the readiness criterion: metadata requests are served
        return admin.describe_cluster()["cluster_id"]
    finally:
        admin.close()
