"""The Kubernetes deployment: every overlay renders, validates and matches compose.

Rendering uses `kubectl kustomize` where kubectl exists and deploy/k8s/render.py
otherwise (a test checks both agree). Schemas: kubernetes-validate for
Kubernetes K8S_VERSION; custom resources (Strimzi, ECK, KEDA, Prometheus
Operator) have no schema there and get structural checks here instead.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").exists())
COMPOSE_FILE = ROOT / "deploy" / "compose" / "docker-compose.yml"

K8S_VERSION = "1.32.0"
# Every service of services/settings.SERVICE_PORTS: a new service must be deployed too.
from services.settings import SERVICE_PORTS  # noqa: E402

PIPELINE = tuple(SERVICE_PORTS)
HTTP_SERVICES = ("ingest", "api")
# Workloads that compose and Kubernetes both run, with the same command and settings.
SHARED_WORKLOADS = (*PIPELINE, "topics-create", "es-setup", "kibana-import", "thanks-digest")
# Scheduled jobs (deploy/k8s/base/insights.yaml, thanks-digest.yaml) and the command each runs.
CRONJOBS = {"insights-drivers": ["insights", "drivers"], "insights-emerging": ["insights", "emerging"],
            "thanks-digest": ["insights", "thanks-digest"]}
# Faust workers: input topic of each (the KEDA lag trigger).
WORKER_INPUT = {
    "enricher": "feedback.received",
    "indexer": "feedback.enriched",
    "closure": "closure.actions",
    "notifier": "closure.notifications",
    "trends": "feedback.enriched",
    "urgent": "feedback.urgent",
}
# Kafka versions the Strimzi release named in deploy/RUNBOOK.md (1.2) can run.
STRIMZI_KAFKA_VERSIONS = ("4.2.0", "4.2.1", "4.3.0", "4.3.1")
CUSTOM_KINDS = {
    ("kafka.strimzi.io", "Kafka"), ("kafka.strimzi.io", "KafkaNodePool"), ("kafka.strimzi.io", "KafkaTopic"),
    ("kafka.strimzi.io", "KafkaUser"), ("keda.sh", "TriggerAuthentication"),
    ("elasticsearch.k8s.elastic.co", "Elasticsearch"), ("kibana.k8s.elastic.co", "Kibana"),
    ("keda.sh", "ScaledObject"), ("monitoring.coreos.com", "PodMonitor"),
    ("monitoring.coreos.com", "PrometheusRule"),
}


def _load_module(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


render_py = _load_module("deploy_k8s_render", K8S / "render.py")
access = _load_module("deploy_k8s_access", K8S / "access.py")
# Kafka client security: the same for every workload (ConfigMap) plus each one's own user.
KAFKA_CLIENT_CONFIG = {"FEEDBACK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "FEEDBACK_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
                       "FEEDBACK_KAFKA_CA_FILE": "/etc/feedback/kafka-ca/ca.crt"}
KAFKA_LOGIN = {"FEEDBACK_KAFKA_USERNAME", "FEEDBACK_KAFKA_PASSWORD"}
KAFKA_CA_SECRET = "feedback-cluster-ca-cert"  # created by Strimzi for Kafka `feedback`


def kubectl() -> str | None:
    path = shutil.which("kubectl")
    if not path:
        return None
    probe = subprocess.run([path, "kustomize", "--help"], capture_output=True, text=True, timeout=60)
    return path if probe.returncode == 0 else None


@functools.lru_cache(maxsize=None)
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    path = K8S / "overlays" / overlay
    binary = kubectl()
    if binary:
        out = subprocess.run([binary, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        docs = [d for d in yaml.safe_load_all(out.stdout) if d]
    else:
        docs = render_py.build(path)
    return tuple(docs)


def of_kind(docs, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod_spec.get("initContainers", [])) + list(pod_spec["containers"])


def group_of(doc: dict[str, Any]) -> str:
    api = doc["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


def pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod template of a Deployment, Job or CronJob."""
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return spec["template"]


def workload_pod(docs, name: str) -> dict[str, Any]:
    for d in docs:
        if d["kind"] in ("Deployment", "Job", "CronJob") and d["metadata"]["name"] == name:
            return pod_template(d)["spec"]
    raise AssertionError(f"no Deployment, Job or CronJob {name}")


FEEDBACK_CONFIG = re.compile(r"feedback-config-[a-z0-9]{10}")  # configMapGenerator's name + content hash


def feedback_config(docs) -> dict[str, str]:
    """Data of the generated ConfigMap feedback-config (its name carries a content hash)."""
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and FEEDBACK_CONFIG.fullmatch(d["metadata"]["name"])]
    return config["data"]


def env_names(docs, container: dict[str, Any]) -> set[str]:
    config_maps = of_kind(docs, "ConfigMap")
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef")
        assert ref, "only ConfigMaps by envFrom (secrets by secretKeyRef)"
        names |= set(config_maps[ref["name"]]["data"])
    return names


# --- rendering and schemas ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders(overlay):
    docs = render(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "ConfigMap", "Job", "NetworkPolicy", "PodDisruptionBudget", "ScaledObject",
            "Kafka", "KafkaNodePool", "KafkaTopic", "Elasticsearch", "Kibana", "Namespace"} <= kinds
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    assert len(namespaces) == 1 and None not in namespaces, namespaces
    assert of_kind(docs, "Namespace").keys() == namespaces


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_python_renderer_matches_kubectl(overlay):
    binary = kubectl()
    if not binary:
        pytest.skip("kubectl is not installed; render.py is the renderer here")

    def key(d):
        return d["apiVersion"], d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]

    ours = {key(d): d for d in render_py.build(K8S / "overlays" / overlay)}
    theirs = {key(d): d for d in render(overlay)}
    assert ours.keys() == theirs.keys()
    for k, doc in theirs.items():
        assert ours[k] == doc, k


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_validate_against_kubernetes_schemas(overlay):
    kv = pytest.importorskip("kubernetes_validate", reason="pip install 'kubernetes-validate>=1.30,<2'")
    validated = 0
    for doc in render(overlay):
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
            validated += 1
        except kv.SchemaNotFoundError:
            assert (group_of(doc), doc["kind"]) in CUSTOM_KINDS, f"unexpected kind {doc['apiVersion']} {doc['kind']}"
            assert doc["apiVersion"] and doc["kind"]
            assert doc["metadata"]["name"] and doc["metadata"]["namespace"]
            assert isinstance(doc.get("spec"), dict) and doc["spec"], doc["metadata"]["name"]
        except kv.ValidationError as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']}: {exc}")
    assert validated > 30


# --- workloads -------------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_resources_and_runs_non_root(overlay):
    docs = render(overlay)
    deployments = of_kind(docs, "Deployment")
    assert set(PIPELINE) <= set(deployments)
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for c in containers(pod):
            where = f"{name}/{c['name']}"
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in c, f"{where} lacks {probe}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), f"{where} {kind}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], where
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get("/tmp") in tmp_volumes, f"{where}: /tmp must be an emptyDir"
        if name in PIPELINE:
            c = pod["containers"][0]
            assert c["livenessProbe"]["httpGet"]["path"] == "/health", name
            assert c["readinessProbe"]["httpGet"]["path"] == "/ready", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_jobs_run_non_root_with_limits(overlay):
    jobs = of_kind(render(overlay), "Job")
    assert {"topics-create", "es-setup", "kibana-import"} <= set(jobs)
    for name, job in jobs.items():
        pod = job["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in containers(pod):
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_thanks_digest_runs_weekly_once_at_a_time_non_root_and_may_send_mail(overlay):
    docs = render(overlay)
    cron = of_kind(docs, "CronJob")["thanks-digest"]["spec"]
    assert cron["schedule"] == "0 6 * * 1" and cron["timeZone"] == "Europe/Helsinki"
    assert cron["concurrencyPolicy"] == "Forbid", "two runs at once could race on a unit"
    pod = workload_pod(docs, "thanks-digest")
    [c] = pod["containers"]
    assert c["args"] == ["insights", "thanks-digest"]
    assert pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])
    assert "thanks-digest" not in access.KAFKA_ACCESS, "it reads Elasticsearch only: no Kafka user"
    labels = pod_template(of_kind(docs, "CronJob")["thanks-digest"])["metadata"]["labels"]
    policies = of_kind(docs, "NetworkPolicy")
    mail = policies["staff-email-to-smtp"]["spec"]["podSelector"]["matchExpressions"][0]
    assert labels["app.kubernetes.io/name"] in mail["values"] and "urgent" in mail["values"]
    assert 587 in {p["port"] for rule in policies["staff-email-to-smtp"]["spec"]["egress"] for p in rule["ports"]}
    es = policies["pipeline-to-kafka-and-elasticsearch"]["spec"]["podSelector"]["matchExpressions"][0]
    assert labels["app.kubernetes.io/component"] in es["values"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_cronjobs_run_their_command_non_root_with_limits_one_at_a_time(overlay):
    docs = render(overlay)
    cronjobs = of_kind(docs, "CronJob")
    assert set(cronjobs) == set(CRONJOBS)
    egress = of_kind(docs, "NetworkPolicy")["pipeline-to-kafka-and-elasticsearch"]["spec"]["podSelector"]
    (components,) = [e["values"] for e in egress["matchExpressions"] if e["key"] == "app.kubernetes.io/component"]
    for name, cron in cronjobs.items():
        assert cron["spec"]["concurrencyPolicy"] == "Forbid", name
        template = cron["spec"]["jobTemplate"]["spec"]["template"]
        assert template["metadata"]["labels"]["app.kubernetes.io/component"] in components, f"{name}: no egress"
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        (main,) = pod["containers"]
        assert main["args"] == CRONJOBS[name], name
        assert main["securityContext"]["readOnlyRootFilesystem"] is True, name
        assert {"cpu", "memory"} <= set(main["resources"]["limits"]), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_service_and_a_disruption_budget(overlay):
    from services.settings import SERVICE_PORTS

    docs = render(overlay)
    services, pdbs = of_kind(docs, "Service"), of_kind(docs, "PodDisruptionBudget")
    for name, dep in of_kind(docs, "Deployment").items():
        labels = dep["spec"]["template"]["metadata"]["labels"]
        for obj in (services[name], pdbs[name]):
            selector = obj["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert all(labels.get(k) == v for k, v in selector.items()), name
        if name in SERVICE_PORTS:
            assert services[name]["spec"]["ports"][0]["port"] == SERVICE_PORTS[name]
            c = dep["spec"]["template"]["spec"]["containers"][0]
            assert c["ports"][0]["containerPort"] == SERVICE_PORTS[name]
            assert {"name": "FEEDBACK_PORT", "value": str(SERVICE_PORTS[name])} in c["env"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_deny_by_default_and_allow_the_pipeline_flows(overlay):
    policies = of_kind(render(overlay), "NetworkPolicy")
    deny = policies["default-deny-all"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    flows = policies["pipeline-to-kafka-and-elasticsearch"]["spec"]
    ports = {p["port"] for rule in flows["egress"] for p in rule["ports"]}
    assert ports == {9093, 9200}, "Kafka only on its TLS listener"
    assert any(p["port"] == 53 for rule in policies["allow-dns"]["spec"]["egress"] for p in rule["ports"])
    scrape = {p["port"] for rule in policies["prometheus-to-pipeline"]["spec"]["ingress"] for p in rule["ports"]}
    assert set(SERVICE_PORTS.values()) <= scrape, "Prometheus must reach every service's port"


# --- settings and secrets -------------------------------------------------------------------


def _secret_fields() -> set[str]:
    from services.settings import Settings

    return {f"FEEDBACK_{name.upper()}" for name, field in Settings.model_fields.items()
            if "SecretStr" in str(field.annotation)}


def _secret_env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_only_by_reference_and_each_workload_gets_only_its_own(overlay):
    from services.settings import Settings

    docs = render(overlay)
    secret_names = _secret_fields()
    config = feedback_config(docs)
    assert not secret_names & set(config), "secrets never in a ConfigMap"
    for key in config:
        assert key.removeprefix("FEEDBACK_").lower() in Settings.model_fields, f"{key} is not a setting"
    # The only Secret rendered holds ECK's role definitions, no credentials.
    assert set(of_kind(docs, "Secret")) == {"feedback-es-roles"}
    assert set(access.SECRETS) == {*PIPELINE, *CRONJOBS, "topics-create", "es-setup"}, "deploy/k8s/access.py SECRETS"
    for name, wanted in access.SECRETS.items():
        main = workload_pod(docs, name)["containers"][0]
        env = {e["name"]: e for e in main.get("env", [])}
        refs = _secret_env(main)
        expected = {k: {"name": access.SECRET_SOURCES[k][0], "key": access.SECRET_SOURCES[k][1],
                        **({"optional": True} if access.SECRET_SOURCES[k][2] else {})} for k in wanted}
        if name in access.KAFKA_ACCESS:
            expected["FEEDBACK_KAFKA_PASSWORD"] = {"name": access.user_name(name), "key": "password"}
        assert refs == expected, f"{name}: secrets differ from deploy/k8s/access.py"
        # Every secret setting comes by reference or not at all (never as a literal value).
        assert not {k for k in secret_names & set(env) if k not in refs}, name
        for key in env:
            assert key.removeprefix("FEEDBACK_").lower() in Settings.model_fields, f"{key} is not a setting"


def test_the_secrets_table_matches_what_the_code_reads():
    """A secret in SECRETS that no module of the workload reads would be a needless exposure."""
    readers = {  # modules whose settings reads decide a workload's secrets
        "ingest": ["services/apps/ingest.py"],
        "api": ["services/apps", "services/ops/erasure.py", "services/adapters/es.py",
                "services/adapters/contacts_store.py"],
        "notifier": ["services/workers/notifier.py", "services/adapters/delivery.py",
                     "services/adapters/contacts_store.py"],  # contact_vault(settings)
        "es-setup": ["services/adapters/es.py"],
    }
    for workload, paths in readers.items():
        text = "".join(f.read_text() for path in paths for f in
                       ((ROOT / path).rglob("*.py") if (ROOT / path).is_dir() else [ROOT / path]))
        for env in access.SECRETS[workload]:
            field = env.removeprefix("FEEDBACK_").lower()
            assert re.search(rf"\b{field}\b", text), f"{workload} gets {env} but its code never reads {field}"
    # A service that checks its secrets at start (services.settings.SERVICE_SECRETS, where it
    # exists) must be given each of them, or it would refuse to start in the cluster.
    import services.settings as settings_module

    for service, names in getattr(settings_module, "SERVICE_SECRETS", {}).items():
        missing = {f"FEEDBACK_{n.upper()}" for n in names} - set(access.SECRETS[service])
        assert not missing, f"{service} checks {sorted(missing)} at start but deploy/k8s/access.py withholds them"
    # Nothing of the lead API, intake keys or SMTP login reaches the workers.
    for worker in ("enricher", "indexer", "closure", "trends"):
        assert not {"FEEDBACK_API_TOKENS", "FEEDBACK_INGEST_API_KEYS", "FEEDBACK_PSEUDONYM_KEY",
                    "FEEDBACK_SMTP_PASSWORD"} & set(access.SECRETS[worker]), worker


def _compose_workloads() -> dict[str, dict[str, Any]]:
    return yaml.safe_load(COMPOSE_FILE.read_text())["services"]


def _unescape(items):
    return [s.replace("$$", "$") for s in items] if items else None


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_compose_and_kubernetes_run_the_same_commands_with_the_same_settings(overlay):
    docs = render(overlay)
    compose = _compose_workloads()
    for name in SHARED_WORKLOADS:
        svc = compose[name]
        main = workload_pod(docs, name)["containers"][0]
        assert _unescape(main.get("command")) == _unescape(svc.get("entrypoint")), f"{name}: entrypoint"
        assert _unescape(main.get("args")) == _unescape(svc.get("command")), f"{name}: command"
        # Secrets: each Kubernetes workload gets only its own (deploy/k8s/access.py); compose on
        # one host shares one .env file, so its services all get every pipeline secret. Kafka's
        # TLS and SCRAM login exist only on Kubernetes (compose keeps Kafka on its own network).
        secrets = _secret_fields() | set(access.SECRET_SOURCES)
        k8s_only = KAFKA_LOGIN | set(KAFKA_CLIENT_CONFIG)
        k8s = env_names(docs, main)
        assert k8s - secrets - k8s_only == set(svc["environment"]) - secrets, f"{name}: environment names differ"
        assert k8s & secrets - k8s_only <= set(svc["environment"]), f"{name}: a secret compose lacks"
        if name == "kibana-import":
            assert main["image"] == svc["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_versions_match_compose(overlay):
    docs = render(overlay)
    compose = _compose_workloads()
    env = {}
    for line in (ROOT / "deploy" / "compose" / ".env.example").read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            env[k] = v
    es_version = env["ELASTIC_VERSION"]
    assert of_kind(docs, "Elasticsearch")["feedback"]["spec"]["version"] == es_version
    assert of_kind(docs, "Kibana")["feedback"]["spec"]["version"] == es_version
    assert es_version in compose["elasticsearch"]["image"]
    kafka = of_kind(docs, "Kafka")["feedback"]["spec"]["kafka"]
    # Strimzi 1.2 runs Kafka 4.2.0 - 4.3.1; compose runs the release tested here (4.x too).
    assert kafka["version"] in STRIMZI_KAFKA_VERSIONS and compose["kafka"]["image"].startswith("apache/kafka:4.")
    major_minor = ".".join(kafka["version"].split(".")[:2])
    assert kafka["metadataVersion"].startswith(f"{major_minor}-IV"), "metadataVersion of another release"


# --- Kafka, topics, KEDA ----------------------------------------------------------------------


def test_generated_topics_are_current():
    gen = _load_module("deploy_k8s_generate_topics", K8S / "generate_topics.py")
    assert (K8S / "base" / "kafka" / "topics.yaml").read_text() == gen.render(), \
        "run: python deploy/k8s/generate_topics.py"


def test_generated_prometheus_rule_is_current():
    gen = _load_module("deploy_k8s_generate_rules", K8S / "generate_prometheus_rules.py")
    assert gen.OUTPUT.read_text() == gen.render(), "run: python deploy/k8s/generate_prometheus_rules.py"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_topics_match_topics_module(overlay):
    from services.topics import ALL_TOPICS

    docs = render(overlay)
    topics = {d["spec"]["topicName"]: d for d in of_kind(docs, "KafkaTopic").values()}
    assert set(topics) == {t.name for t in ALL_TOPICS}
    replication = int(feedback_config(docs)["FEEDBACK_TOPIC_REPLICATION"])
    nodes = sum(p["spec"]["replicas"] for p in of_kind(docs, "KafkaNodePool").values()
                if "broker" in p["spec"]["roles"])
    for t in ALL_TOPICS:
        spec = topics[t.name]["spec"]
        assert spec["partitions"] == t.partitions, t.name
        assert {k: str(v) for k, v in spec.get("config", {}).items()} == t.config, t.name
        assert spec["replicas"] == replication <= nodes, t.name
        assert topics[t.name]["metadata"]["labels"]["strimzi.io/cluster"] == "feedback"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_kafka_runs_kraft_with_a_node_pool(overlay):
    docs = render(overlay)
    kafka = of_kind(docs, "Kafka")["feedback"]
    annotations = kafka["metadata"]["annotations"]
    assert annotations["strimzi.io/kraft"] == "enabled" and annotations["strimzi.io/node-pools"] == "enabled"
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    # Strimzi 1.0 removed v1beta2: every Strimzi resource must use the v1 API.
    strimzi = [d for d in docs if group_of(d) == "kafka.strimzi.io"]
    assert strimzi and {d["apiVersion"] for d in strimzi} == {"kafka.strimzi.io/v1"}
    assert "zookeeper" not in kafka["spec"]
    pools = of_kind(docs, "KafkaNodePool")
    assert pools and all(p["metadata"]["labels"]["strimzi.io/cluster"] == "feedback" for p in pools.values())
    roles = {r for p in pools.values() for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    bootstrap = feedback_config(docs)["FEEDBACK_KAFKA_BOOTSTRAP"]
    namespace = kafka["metadata"]["namespace"]
    assert bootstrap == f"feedback-kafka-bootstrap.{namespace}.svc:9093", "KEDA needs the namespaced address"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kafka_listens_only_with_tls_and_scram_and_enforces_acls(overlay):
    docs = render(overlay)
    kafka = of_kind(docs, "Kafka")["feedback"]["spec"]["kafka"]
    listeners = kafka["listeners"]
    assert listeners and all(x["tls"] is True for x in listeners), "every listener uses TLS"
    assert all(x.get("authentication", {}).get("type") == "scram-sha-512" for x in listeners)
    assert [x["port"] for x in listeners] == [9093]
    assert kafka["authorization"]["type"] == "simple"
    config = feedback_config(docs)
    for key, value in KAFKA_CLIENT_CONFIG.items():
        assert config[key] == value, key


def test_generated_kafka_users_are_current():
    assert (K8S / "base" / "kafka" / "users.yaml").read_text() == access.render(), "run: python deploy/k8s/access.py"


def _acl_ops(user: dict[str, Any]) -> dict[tuple[str, str, str], set[str]]:
    return {(a["resource"]["type"], a["resource"]["name"], a["resource"]["patternType"]): set(a["operations"])
            for a in user["spec"]["authorization"]["acls"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_workload_connects_as_its_own_kafka_user_with_only_its_topics(overlay):
    from services.settings import Settings
    from services.topics import ALL_TOPICS, RESPONDENT_CONTACTS
    from services.workers.runtime import group_id

    docs = render(overlay)
    users = of_kind(docs, "KafkaUser")
    assert set(users) == {access.user_name(w) for w in access.KAFKA_ACCESS}
    assert {*PIPELINE, "topics-create"} <= set(access.KAFKA_ACCESS), "a new service needs a KafkaUser"
    for user in users.values():
        assert user["metadata"]["labels"]["strimzi.io/cluster"] == "feedback"
        assert user["spec"]["authentication"]["type"] == "scram-sha-512"
        for acl in user["spec"]["authorization"]["acls"]:
            assert acl["resource"]["name"] not in ("*", ""), "no wildcard ACLs"
            assert "All" not in acl["operations"]
    ops = {w: _acl_ops(users[access.user_name(w)]) for w in access.KAFKA_ACCESS}
    settings = Settings(topic_prefix="")
    for worker, topic in WORKER_INPUT.items():
        assert {"Read"} <= ops[worker][("topic", topic, "literal")], worker
        assert {"Read"} <= ops[worker][("group", group_id(settings, worker), "literal")], worker
    # ingest only writes; only ingest, api (opt-out, erasure) and notifier touch contacts.
    assert not any("Read" in o for o in ops["ingest"].values())
    contacts = ("topic", RESPONDENT_CONTACTS.name, "literal")
    assert {w for w, o in ops.items() if contacts in o} == {"ingest", "api", "notifier", "operator", "topics-create"}
    assert not any(k[0] == "group" for k in ops["ingest"]) and not any(k[0] == "group" for k in ops["api"])
    for t in ALL_TOPICS:
        assert any("Write" in o.get(("topic", t.name, "literal"), set())
                   for w, o in ops.items() if w != "operator"), f"no workload writes {t.name}"
        assert "Create" in ops["topics-create"][("topic", t.name, "literal")]
    # Each workload's pod logs in as that user, with the cluster CA mounted.
    for name in access.KAFKA_ACCESS:
        if name == "operator":
            continue
        pod = workload_pod(docs, name)
        main = pod["containers"][0]
        env = {e["name"]: e for e in main["env"]}
        assert env["FEEDBACK_KAFKA_USERNAME"]["value"] == access.user_name(name)
        assert env["FEEDBACK_KAFKA_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
            "name": access.user_name(name), "key": "password"}
        volumes = {v["name"]: v for v in pod["volumes"]}
        mount = next(m for m in main["volumeMounts"] if m["mountPath"] == "/etc/feedback/kafka-ca")
        assert mount["readOnly"] is True
        assert volumes[mount["name"]]["secret"]["secretName"] == KAFKA_CA_SECRET, name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_scales_each_worker_on_lag_within_its_partitions(overlay):
    from services.topics import ALL_TOPICS

    partitions = {t.name: t.partitions for t in ALL_TOPICS}
    docs = render(overlay)
    scaled = of_kind(docs, "ScaledObject")
    deployments = of_kind(docs, "Deployment")
    workers = set(PIPELINE) - set(HTTP_SERVICES)
    assert workers == set(WORKER_INPUT), "add the new worker's input topic to WORKER_INPUT and a ScaledObject"
    assert set(scaled) == set(WORKER_INPUT)
    for worker, topic in WORKER_INPUT.items():
        spec = scaled[worker]["spec"]
        assert spec["scaleTargetRef"]["name"] == worker and worker in deployments
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions[topic], worker
        assert spec["maxReplicaCount"] == partitions[topic], worker
        (trigger,) = spec["triggers"]
        assert trigger["type"] == "kafka"
        meta = trigger["metadata"]
        assert meta["consumerGroup"] == f"feedback-{worker}", "faust app id"
        assert meta["topic"] == topic
        assert meta["bootstrapServersFromEnv"] == "FEEDBACK_KAFKA_BOOTSTRAP"
        assert meta["sasl"] == "scram_sha512" and meta["tls"] == "enable"
        auth = of_kind(docs, "TriggerAuthentication")[trigger["authenticationRef"]["name"]]["spec"]
        names = {e["name"] for e in auth["env"]}
        assert {e["parameter"] for e in auth["env"]} == {"username", "password"}
        main_env = {e["name"] for e in deployments[worker]["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert names <= main_env, f"{worker}: KEDA logs in as the worker"
        assert auth["secretTargetRef"] == [{"parameter": "ca", "name": KAFKA_CA_SECRET, "key": "ca.crt"}]
        assert int(meta["lagThreshold"]) > 0
        main = deployments[worker]["spec"]["template"]["spec"]["containers"][0]
        assert "FEEDBACK_KAFKA_BOOTSTRAP" in env_names(docs, main)
        assert "replicas" not in deployments[worker]["spec"], "KEDA owns the replica count"


ES_CA_SECRET = "feedback-es-http-certs-public"  # created by ECK for Elasticsearch `feedback`
ES_CA_DIR = "/etc/feedback/es-ca"


def _reads_feedback_config(container: dict[str, Any]) -> bool:
    return any(FEEDBACK_CONFIG.fullmatch(s.get("configMapRef", {}).get("name", "")) for s in container.get("envFrom", []))


def _feedback_config_readers(docs) -> dict[str, dict[str, Any]]:
    """Pod spec of every Deployment and Job with a container that reads the generated feedback-config."""
    return {d["metadata"]["name"]: pod_template(d)["spec"] for d in docs
            if d["kind"] in ("Deployment", "Job", "CronJob")
            and any(_reads_feedback_config(c) for c in containers(pod_template(d)["spec"]))}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_eck_elasticsearch_and_kibana(overlay):
    docs = render(overlay)
    es = of_kind(docs, "Elasticsearch")["feedback"]
    kibana = of_kind(docs, "Kibana")["feedback"]
    assert re.fullmatch(r"8\.19\.\d+", es["spec"]["version"])
    assert kibana["spec"]["elasticsearchRef"]["name"] == "feedback"
    realm = [r["secretName"] for r in es["spec"]["auth"]["fileRealm"]]
    assert realm == ["feedback-es-app-user"]
    # HTTPS with ECK's self-signed certificate, verified with ECK's CA.
    tls = es["spec"].get("http", {}).get("tls", {})
    assert not tls.get("selfSignedCertificate", {}).get("disabled"), "Elasticsearch HTTP TLS must stay on"
    config = feedback_config(docs)
    assert config["FEEDBACK_ES_URL"] == "https://feedback-es-http:9200"
    assert config["FEEDBACK_ES_CA_CERTS"] == f"{ES_CA_DIR}/ca.crt"
    readers = _feedback_config_readers(docs)
    assert set(readers) >= {*PIPELINE, "topics-create", "es-setup"}
    for name, pod in readers.items():
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for c in filter(_reads_feedback_config, containers(pod)):
            mount = next((m for m in c.get("volumeMounts", []) if m["mountPath"] == ES_CA_DIR), None)
            assert mount and mount.get("readOnly") is True, f"{name}/{c['name']}: no read-only {ES_CA_DIR}"
            secret = volumes[mount["name"]].get("secret", {})
            assert secret.get("secretName") == ES_CA_SECRET, f"{name}: {ES_CA_DIR} is not {ES_CA_SECRET}"
            assert {"key": "ca.crt", "path": "ca.crt"} in secret.get("items", []), name
    job = workload_pod(docs, "kibana-import")
    env = {e["name"]: e for e in job["containers"][0]["env"]}
    assert env["KIBANA_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "feedback-es-elastic-user"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_snapshot_repository_volume_and_backup_job(overlay):
    """path.repo on every node is a mounted claim; the Job registers the repository inside it and SLM."""
    docs = render(overlay)
    job = workload_pod(docs, "es-backup-setup")["containers"][0]
    args = job["args"]
    assert args[:2] == ["es", "backup-setup"]
    compose = _compose_workloads()["es-backup-setup"]
    assert _unescape(compose["command"]) == args, "compose and Kubernetes register the same repository"
    location = args[args.index("--location") + 1]
    claims = of_kind(docs, "PersistentVolumeClaim")
    for node_set in of_kind(docs, "Elasticsearch")["feedback"]["spec"]["nodeSets"]:
        paths = node_set["config"]["path.repo"]
        assert any(location.startswith(p + "/") for p in paths), f"{location} is outside path.repo {paths}"
        pod = node_set["podTemplate"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        (es,) = [c for c in pod["containers"] if c["name"] == "elasticsearch"]
        mounts = {m["mountPath"]: m["name"] for m in es["volumeMounts"]}
        for path in paths:
            claim = volumes[mounts[path]]["persistentVolumeClaim"]["claimName"]
            modes = claims[claim]["spec"]["accessModes"]
            # An fs repository is one folder shared by every node.
            assert node_set["count"] == 1 or modes == ["ReadWriteMany"], (claim, modes)
    env = {e["name"]: e for e in job["env"]}
    assert env["FEEDBACK_ES_USERNAME"] == {"name": "FEEDBACK_ES_USERNAME", "value": "elastic"}
    assert env["FEEDBACK_ES_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "feedback-es-elastic-user",
                                                                        "key": "elastic"}
    assert _reads_feedback_config(job), "the ES URL and CA come from feedback-config"


# --- checkov -----------------------------------------------------------------------------------


def test_checkov_skips_are_justified():
    config = yaml.safe_load((K8S / ".checkov.yaml").read_text())
    doc = (K8S / "CHECKOV.md").read_text()
    for check in config.get("skip-check", []):
        assert re.search(rf"^\| {re.escape(check)} \|", doc, re.M), f"{check} skipped without a reason in CHECKOV.md"
    # Skips on one resource (checkov.io/skipN annotations) need a reason there too, and only
    # the node-tuning DaemonSet may have them.
    for source in [*(render(o) for o in OVERLAYS), tuple(render_py.build(K8S / "node-tuning"))]:
        for d in source:
            skips = {k: v for k, v in d["metadata"].get("annotations", {}).items() if k.startswith("checkov.io/skip")}
            if not skips:
                continue
            assert (d["kind"], d["metadata"]["name"]) == ("DaemonSet", "max-map-count"), d["metadata"]["name"]
            for value in skips.values():
                check, _, reason = value.partition("=")
                assert reason and re.search(rf"^\| {re.escape(check)} \|", doc, re.M), value


def test_checkov_scan_passes():
    """scan.sh uses $CHECKOV, checkov on PATH, or its pinned venv under the user cache, which
    scripts/install.sh creates (and scan.sh itself on first use): never skipped."""
    env = dict(os.environ, PYTHON=sys.executable)
    result = subprocess.run(["bash", str(K8S / "scan.sh")], cwd=ROOT, capture_output=True, text=True,
                            env=env, timeout=1200)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout
    kubernetes = re.search(r"kubernetes scan results:\s+Passed checks: (\d+)", result.stdout)
    assert kubernetes and int(kubernetes.group(1)) > 1000, "the manifests were scanned"


def test_secrets_example_covers_every_reference():
    docs = [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]
    example = {d["metadata"]["name"]: set(d["stringData"]) for d in docs}
    for overlay in OVERLAYS:
        for d in render(overlay):
            if d["kind"] not in ("Deployment", "Job", "CronJob"):
                continue
            for c in containers(pod_template(d)["spec"]):
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    # feedback-es-elastic-user is created by ECK, a KafkaUser's Secret by Strimzi.
                    strimzi = {access.user_name(w) for w in access.KAFKA_ACCESS}
                    if ref and ref["name"] != "feedback-es-elastic-user" and ref["name"] not in strimzi:
                        assert ref["key"] in example.get(ref["name"], set()), json.dumps(ref)


# --- public ingress ----------------------------------------------------------------------------

# Paths of the apps that must never be public: scraping, probes and the generated API docs.
PRIVATE_PATHS = ("/metrics", "/health", "/ready", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json")


def _ingress_backend(ingresses, host: str, path: str) -> str | None:
    """The Service a request reaches (Kubernetes Prefix/Exact matching, longest path wins), or None."""
    best: tuple[int, str] | None = None
    for ing in ingresses:
        for rule in ing["spec"]["rules"]:
            if rule.get("host") != host:
                continue
            for p in rule["http"]["paths"]:
                rule_path, kind = p["path"], p["pathType"]
                if kind == "Exact":
                    hit = path == rule_path
                else:
                    assert kind == "Prefix", "ImplementationSpecific matching differs by controller"
                    parts, want = path.rstrip("/").split("/"), rule_path.rstrip("/").split("/")
                    hit = parts[:len(want)] == want
                if hit and (best is None or len(rule_path) > best[0]):
                    best = (len(rule_path), p["backend"]["service"]["name"])
    return best[1] if best else None


def _app_paths(module: str) -> list[str]:
    """Every route path of an HTTP app, path parameters filled in."""
    import importlib

    from services.settings import Settings

    app = importlib.import_module(f"services.apps.{module}").create_app(Settings())
    return sorted({re.sub(r"\{[^}]+\}", "x", r.path) for r in app.router.routes if hasattr(r, "path")})


def test_public_ingress_publishes_the_apps_but_not_metrics_probes_or_api_docs():
    docs = render("prod")
    ingresses = list(of_kind(docs, "Ingress").values())
    hosts = {r["host"]: {p["backend"]["service"]["name"] for p in r["http"]["paths"]}
             for ing in ingresses for r in ing["spec"]["rules"]}
    host_of = {next(iter(services)): host for host, services in hosts.items() if len(services) == 1}
    for service in HTTP_SERVICES:
        host = host_of[service]
        paths = _app_paths(service)
        assert set(PRIVATE_PATHS) <= set(paths), "the app should have them (or drop them here)"
        for path in paths:
            reached = _ingress_backend(ingresses, host, path)
            if path in PRIVATE_PATHS:
                assert reached is None, f"{host}{path} is public"
            else:
                assert reached == service, f"{host}{path} is not published"
        for path in PRIVATE_PATHS:
            for other in hosts:
                assert _ingress_backend(ingresses, other, path) in (None, "feedback-kb-http"), f"{other}{path}"
    # Concrete routes the public and the leads use.
    assert _ingress_backend(ingresses, host_of["ingest"], "/v1/feedback/kiosk") == "ingest"
    for path in ("/v1/opt-out", "/board/x/feed.json", "/console/login", "/v1/search", "/assets/console.js"):
        assert _ingress_backend(ingresses, host_of["api"], path) == "api", path
    assert _ingress_backend(ingresses, host_of["api"], "/v1x") is None, "Prefix matches whole segments"


# --- upgrades: configuration changes roll the pods, Jobs re-apply ------------------------------


def _config_map_refs(docs) -> list[tuple[str, str]]:
    """(workload, ConfigMap name) for every reference in a pod template: envFrom, env, volumes."""
    refs: list[tuple[str, str]] = []

    def walk(node: Any, owner: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("configMapRef", "configMapKeyRef", "configMap") and isinstance(value, dict):
                    refs.append((owner, value["name"]))
                walk(value, owner)
        elif isinstance(node, list):
            for item in node:
                walk(item, owner)

    for d in docs:
        if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"):
            walk(d["spec"], f"{d['kind']}/{d['metadata']['name']}")
    return refs


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_feedback_config_is_generated_with_a_content_hash_that_every_reader_uses(overlay):
    """A configuration change renames the ConfigMap, so every Deployment and Job reading it rolls."""
    docs = render(overlay)
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap"}
    hashed = {n for n in names if FEEDBACK_CONFIG.fullmatch(n)}
    assert len(hashed) == 1 and "feedback-config" not in names, f"no hashed feedback-config in {sorted(names)}"
    refs = _config_map_refs(docs)
    assert refs, "nothing reads a ConfigMap"
    dangling = [(owner, name) for owner, name in refs if name not in names]
    assert not dangling, f"references to ConfigMaps that are not rendered (unhashed names?): {dangling}"
    readers = {owner for owner, name in refs if name in hashed}
    assert {f"Deployment/{s}" for s in PIPELINE} <= readers
    assert {"Job/topics-create", "Job/es-setup", "Job/es-backup-setup"} <= readers


def test_a_configuration_change_renames_the_config_map_and_its_references(tmp_path):
    """The hash follows the content (render.py; kubectl too where it exists): pods roll on a change."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    before = render_py.build(copy / "overlays" / "dev")
    env = copy / "overlays" / "dev" / "config.env"
    text = env.read_text()
    assert "FEEDBACK_LOG_LEVEL=DEBUG\n" in text
    env.write_text(text.replace("FEEDBACK_LOG_LEVEL=DEBUG\n", "FEEDBACK_LOG_LEVEL=WARNING\n"))
    after = render_py.build(copy / "overlays" / "dev")
    assert feedback_config(after)["FEEDBACK_LOG_LEVEL"] == "WARNING"
    old = {n for _, n in _config_map_refs(before) if FEEDBACK_CONFIG.fullmatch(n)}
    new = {n for _, n in _config_map_refs(after) if FEEDBACK_CONFIG.fullmatch(n)}
    assert len(old) == len(new) == 1 and old != new
    binary = kubectl()
    if binary:
        out = subprocess.run([binary, "kustomize", str(copy / "overlays" / "dev")], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        theirs = {n for _, n in _config_map_refs([d for d in yaml.safe_load_all(out.stdout) if d])
                  if FEEDBACK_CONFIG.fullmatch(n)}
        assert theirs == new, "render.py's hash differs from kustomize's"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_change_settings_through_the_generator_not_patches(overlay):
    """A strategic-merge patch on the ConfigMap would miss the hashed name: overlays merge instead."""
    k = yaml.safe_load((K8S / "overlays" / overlay / "kustomization.yaml").read_text())
    for spec in k.get("patches", []):
        docs = yaml.safe_load_all((K8S / "overlays" / overlay / spec["path"]).read_text()) if "path" in spec else []
        assert all(d.get("kind") != "ConfigMap" for d in docs if isinstance(d, dict)), spec
        assert spec.get("target", {}).get("kind") != "ConfigMap", spec
    for spec in k.get("configMapGenerator", []):
        assert spec.get("behavior") == "merge", "the base generates feedback-config; overlays merge into it"


# --- monitoring: the Grafana dashboards of compose, for the Grafana sidecar ---------------------

DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"


MONITORED = [o for o in OVERLAYS if of_kind(render(o), "PodMonitor")]  # with the Prometheus Operator component


def test_prod_is_monitored_by_the_prometheus_operator():
    assert "prod" in MONITORED


@pytest.mark.parametrize("overlay", MONITORED)
def test_grafana_dashboards_config_map_holds_every_dashboard_file(overlay):
    """One source: the ConfigMap is generated from deploy/grafana/dashboards, file for file."""
    docs = render(overlay)
    dashboards = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"].get("labels", {}).get(
        "grafana_dashboard") == "1"]
    assert [d["metadata"]["name"] for d in dashboards] == ["feedback-grafana-dashboards"], \
        "one ConfigMap, unhashed: the sidecar would load a renamed copy beside the old one"
    data = dashboards[0]["data"]
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(DASHBOARDS.glob("*.json"))}
    assert files and set(data) == set(files), "list every dashboard in deploy/grafana/kustomization.yaml"
    for name, text in files.items():
        assert json.loads(data[name]) == json.loads(text), name


# --- Elasticsearch's virtual memory ---------------------------------------------------------------


def test_prod_elasticsearch_keeps_mmap_and_node_tuning_raises_max_map_count():
    """Elastic advises against allow_mmap: false in production; the nodes get the sysctl instead."""
    for node_set in of_kind(render("prod"), "Elasticsearch")["feedback"]["spec"]["nodeSets"]:
        assert node_set["config"].get("node.store.allow_mmap", True) is not False, node_set["name"]
    docs = render_py.build(K8S / "node-tuning")
    binary = kubectl()
    if binary:
        out = subprocess.run([binary, "kustomize", str(K8S / "node-tuning")], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        assert [d for d in yaml.safe_load_all(out.stdout) if d] == sorted(docs, key=render_py._order)
    (namespace,) = of_kind(docs, "Namespace").values()
    # Privileged pods are refused under `baseline`, which the pipeline's namespace enforces:
    # the setter must live in a namespace of its own.
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    assert namespace["metadata"]["name"] not in {d["metadata"]["namespace"] for o in OVERLAYS for d in render(o)
                                                 if d["kind"] != "Namespace"}
    setter = of_kind(docs, "DaemonSet")["max-map-count"]
    assert setter["metadata"]["namespace"] == namespace["metadata"]["name"]
    pod = setter["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    assert init["securityContext"]["privileged"] is True
    assert "vm.max_map_count=262144" in " ".join(init["command"])
    for c in pod["containers"]:
        assert not c["securityContext"].get("privileged") and c["securityContext"]["runAsNonRoot"] is True
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_dev_may_turn_mmap_off():
    (node_set,) = of_kind(render("dev"), "Elasticsearch")["feedback"]["spec"]["nodeSets"]
    assert node_set["config"]["node.store.allow_mmap"] is False, "dev clusters have no node-tuning"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_init_jobs_can_be_reapplied_by_the_runbook_command(overlay):
    """Job templates are immutable: the RUNBOOK's one delete (by label) must catch every Job, and a TTL
    removes finished ones, so an apply with a new image or ConfigMap never meets an old Job."""
    runbook = (ROOT / "deploy" / "RUNBOOK.md").read_text()
    command = "delete job -l app.kubernetes.io/component=init --ignore-not-found"
    assert command in runbook
    for name, job in of_kind(render(overlay), "Job").items():
        assert job["metadata"]["labels"].get("app.kubernetes.io/component") == "init", name
        assert 0 < job["spec"]["ttlSecondsAfterFinished"] <= 7 * 86400, name
        assert "generateName" not in job["metadata"], "kubectl apply cannot create generated names"
