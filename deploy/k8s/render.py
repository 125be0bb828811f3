#!/usr/bin/env python3
"""Render a kustomization without kubectl: the subset of kustomize this repo uses.

    python deploy/k8s/render.py deploy/k8s/overlays/dev > dev.yaml

Prefer ``kubectl kustomize`` (or ``kustomize build``) where it exists; this is the
fallback for machines without it, and tests/unit/test_deploy_k8s.py checks that
both give the same objects whenever kubectl is there. Supported: ``resources``
(files and directories), ``components``, ``namespace``, ``images`` (newName,
newTag, digest), ``patches`` (strategic-merge documents or JSON 6902 lists,
with an optional ``target`` of group/version/kind/name/namespace/labelSelector),
and ``configMapGenerator`` / ``generatorOptions`` (``envs``, ``literals``, ``files``,
``behavior`` create/merge/replace, ``options`` labels/annotations/
disableNameSuffixHash/immutable) with kustomize's content-hash name suffix and the
rewrite of every reference to a generated ConfigMap in pod templates.
Anything else raises, so a kustomization that outgrows it fails loudly.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "components", "namespace", "images", "patches",
                  "configMapGenerator", "generatorOptions"}
# Marks a generated ConfigMap until the outermost build names it (value: "hash" or "nohash").
GENERATED = "render.py/generated"
# Kinds whose pod template may refer to a ConfigMap.
WORKLOADS = {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}

# Kinds that have no namespace (the ones this repo could plausibly contain).
CLUSTER_SCOPED = {
    "Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
    "StorageClass", "PriorityClass", "IngressClass", "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration", "APIService",
}

# kustomize's legacy output order: these kinds first, in this order, the rest after.
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
    "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret",
    "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim",
    "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class RenderError(Exception):
    """The kustomization uses something this renderer does not support."""


def _load_kustomization(directory: Path) -> dict[str, Any]:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.exists():
            data = yaml.safe_load(path.read_text()) or {}
            unknown = set(data) - SUPPORTED_KEYS
            if unknown:
                raise RenderError(f"{path}: unsupported fields {sorted(unknown)}; use kubectl kustomize")
            return data
    raise RenderError(f"no kustomization file in {directory}")


def _load_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _matches(obj: dict[str, Any], target: dict[str, Any]) -> bool:
    meta = obj.get("metadata", {})
    api = obj.get("apiVersion", "")
    if "group" in target and target["group"] != _group(api):
        return False
    if "version" in target and target["version"] != api.split("/")[-1]:
        return False
    if "kind" in target and target["kind"] != obj.get("kind"):
        return False
    if "name" in target and target["name"] != meta.get("name"):
        return False
    if "namespace" in target and target["namespace"] != meta.get("namespace"):
        return False
    if "labelSelector" in target:
        labels = meta.get("labels", {})
        for term in str(target["labelSelector"]).split(","):
            key, _, value = term.partition("=")
            if labels.get(key.strip()) != value.strip():
                return False
    if "annotationSelector" in target:
        raise RenderError("annotationSelector is not supported")
    return True


def _merge(base: Any, patch: Any) -> Any:
    """Strategic merge, simplified: maps merge, null deletes, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = _merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
        return out
    if (isinstance(base, list) and isinstance(patch, list) and base and patch
            and all(isinstance(i, dict) and "name" in i for i in base + patch)):
        out = [copy.deepcopy(i) for i in base]
        for item in patch:
            for i, existing in enumerate(out):
                if existing["name"] == item["name"]:
                    out[i] = _merge(existing, item)
                    break
            else:
                out.append(copy.deepcopy(item))
        return out
    return copy.deepcopy(patch)


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"bad JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _json6902(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    for op in ops:
        parts = _pointer(op["path"])
        parent: Any = obj
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if kind in ("add", "replace"):
            value = copy.deepcopy(op["value"])
            if isinstance(parent, list):
                if last == "-":
                    parent.append(value)
                elif kind == "add":
                    parent.insert(int(last), value)
                else:
                    parent[int(last)] = value
            else:
                if kind == "replace" and last not in parent:
                    raise RenderError(f"replace of missing path {op['path']}")
                parent[last] = value
        elif kind == "remove":
            del parent[int(last) if isinstance(parent, list) else last]
        else:
            raise RenderError(f"JSON patch op {kind!r} is not supported")
    return obj


def _apply_patch(objects: list[dict[str, Any]], directory: Path, spec: dict[str, Any]) -> None:
    if "patch" in spec:
        docs = [d for d in yaml.safe_load_all(spec["patch"]) if d]
    elif "path" in spec:
        docs = _load_docs(directory / spec["path"])
    else:
        raise RenderError(f"patch without path or patch: {spec}")
    target = spec.get("target")
    if len(docs) == 1 and isinstance(docs[0], list):  # JSON 6902
        if not target:
            raise RenderError("a JSON 6902 patch needs a target")
        hits = [i for i, o in enumerate(objects) if _matches(o, target)]
        if not hits:
            raise RenderError(f"patch target {target} matched nothing")
        for i in hits:
            objects[i] = _json6902(objects[i], docs[0])
        return
    for doc in docs:
        if target:
            selector = target
        else:
            selector = {"kind": doc["kind"], "name": doc["metadata"]["name"], "group": _group(doc["apiVersion"])}
        hits = [i for i, o in enumerate(objects) if _matches(o, selector)]
        if not hits:
            raise RenderError(f"patch target {selector} matched nothing")
        for i in hits:
            patch = copy.deepcopy(doc)
            if target:  # the patch's own name is a placeholder when a target is given
                patch.get("metadata", {}).pop("name", None)
            objects[i] = _merge(objects[i], patch)


def _split_image(image: str) -> tuple[str, str, str]:
    """name, tag, digest of an image reference."""
    digest = ""
    if "@" in image:
        image, digest = image.split("@", 1)
    tag = ""
    last = image.rsplit("/", 1)[-1]
    if ":" in last:
        image, tag = image.rsplit(":", 1)
    return image, tag, digest


def _set_images(node: Any, images: list[dict[str, Any]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and "image" in container:
                        container["image"] = _new_image(container["image"], images)
            _set_images(value, images)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, images)


def _new_image(image: str, images: list[dict[str, Any]]) -> str:
    name, tag, digest = _split_image(image)
    for rule in images:
        if rule["name"] != name:
            continue
        name = rule.get("newName", name)
        if "digest" in rule:
            return f"{name}@{rule['digest']}"
        tag = str(rule.get("newTag", tag))
        break
    ref = name + (f":{tag}" if tag else "")
    return ref + (f"@{digest}" if digest else "")


def _env_file(path: Path) -> dict[str, str]:
    """kustomize's env-file reading: KEY=VALUE lines taken literally, # comments and blanks skipped."""
    data: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise RenderError(f"{path}:{number}: no '=' (values from the environment are not supported)")
        if key in data:
            raise RenderError(f"{path}:{number}: {key} repeats (kustomize refuses it too)")
        data[key] = value
    return data


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _generate(directory: Path, spec: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """One ConfigMap of a configMapGenerator entry (named without its hash yet)."""
    unknown = set(spec) - {"name", "namespace", "behavior", "envs", "literals", "files", "options"}
    if unknown:
        raise RenderError(f"configMapGenerator {spec.get('name')}: unsupported fields {sorted(unknown)}")
    data: dict[str, str] = {}
    for env in spec.get("envs", []):
        data.update(_env_file(directory / env))
    for literal in spec.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = _unquote(value)
    for entry in spec.get("files", []):
        key, sep, path = entry.partition("=")
        path = path if sep else key
        key = key if sep else Path(path).name
        try:
            data[key] = (directory / path).read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise RenderError(f"{directory / path}: binaryData is not supported") from exc
    options = {**defaults, **spec.get("options", {})}
    options["labels"] = {**defaults.get("labels", {}), **spec.get("options", {}).get("labels", {})}
    options["annotations"] = {**defaults.get("annotations", {}), **spec.get("options", {}).get("annotations", {})}
    metadata: dict[str, Any] = {"name": spec["name"]}
    if "namespace" in spec:
        metadata["namespace"] = spec["namespace"]
    if options["labels"]:
        metadata["labels"] = dict(options["labels"])
    annotations = dict(options["annotations"])
    annotations[GENERATED] = "nohash" if options.get("disableNameSuffixHash") else "hash"
    metadata["annotations"] = annotations
    cm: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata}
    if data:
        cm["data"] = data
    if options.get("immutable"):
        cm["immutable"] = True
    return cm


def _run_generators(objects: list[dict[str, Any]], directory: Path, k: dict[str, Any]) -> None:
    defaults = k.get("generatorOptions", {})
    for spec in k.get("configMapGenerator", []):
        cm = _generate(directory, spec, defaults)
        behavior = spec.get("behavior", "create")
        name, namespace = spec["name"], spec.get("namespace")
        hits = [i for i, o in enumerate(objects) if o.get("kind") == "ConfigMap"
                and o["metadata"]["name"] == name and o["metadata"].get("namespace") == namespace]
        if behavior == "create":
            if hits:
                raise RenderError(f"configMapGenerator {name}: exists already (use behavior merge or replace)")
            objects.append(cm)
        elif behavior in ("merge", "replace"):
            if len(hits) != 1 or GENERATED not in objects[hits[0]]["metadata"].get("annotations", {}):
                raise RenderError(f"configMapGenerator {name}: behavior {behavior} needs one generated ConfigMap")
            old = objects[hits[0]]
            if behavior == "merge":
                merged = copy.deepcopy(old)
                merged.setdefault("data", {}).update(cm.get("data", {}))
                for field in ("labels", "annotations"):
                    if cm["metadata"].get(field):
                        merged["metadata"].setdefault(field, {}).update(cm["metadata"][field])
                cm = merged
            objects[hits[0]] = cm
        else:
            raise RenderError(f"configMapGenerator {name}: unknown behavior {behavior!r}")


def _hash_suffix(cm: dict[str, Any]) -> str:
    """kustomize's name suffix: sha256 of the ConfigMap's Go-JSON encoding, 10 characters, no vowels.

    kustomize (v5) hashes with an empty name (checked against kubectl kustomize in the tests).
    """
    encoded: dict[str, Any] = {"kind": "ConfigMap", "name": "", "data": cm.get("data", {})}
    if cm.get("immutable"):
        encoded["immutable"] = True
    text = json.dumps(encoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escape)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _rename_refs(node: Any, renames: dict[str, str]) -> None:
    """Rewrite ConfigMap names in a pod template: envFrom, env valueFrom, volumes, projected volumes."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("configMapRef", "configMapKeyRef", "configMap") and isinstance(value, dict):
                if value.get("name") in renames:
                    value["name"] = renames[value["name"]]
            _rename_refs(value, renames)
    elif isinstance(node, list):
        for item in node:
            _rename_refs(item, renames)


def _name_generated(objects: list[dict[str, Any]]) -> None:
    """Give generated ConfigMaps their final (hashed) names and point every reference at them."""
    renames: dict[str | None, dict[str, str]] = {}
    for obj in objects:
        meta = obj["metadata"]
        mode = meta.get("annotations", {}).pop(GENERATED, None)
        if mode is None:
            continue
        if not meta["annotations"]:
            del meta["annotations"]
        if mode == "hash":
            new = f"{meta['name']}-{_hash_suffix(obj)}"
            renames.setdefault(meta.get("namespace"), {})[meta["name"]] = new
            meta["name"] = new
    for obj in objects:
        names = renames.get(obj["metadata"].get("namespace"))
        if names and obj.get("kind") in WORKLOADS:
            _rename_refs(obj.get("spec"), names)


def _build(directory: Path) -> list[dict[str, Any]]:
    k = _load_kustomization(directory)
    objects: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = directory / entry
        objects += _build(path) if path.is_dir() else _load_docs(path)
    # kustomize's order: resources, generators, components, then the transformers.
    _run_generators(objects, directory, k)
    for entry in k.get("components", []):
        comp = directory / entry
        ck = _load_kustomization(comp)
        if ck.get("kind") != "Component":
            raise RenderError(f"{comp} is not a Component")
        for res in ck.get("resources", []):
            path = comp / res
            objects += _build(path) if path.is_dir() else _load_docs(path)
        _run_generators(objects, comp, ck)
        for spec in ck.get("patches", []):
            _apply_patch(objects, comp, spec)
    for spec in k.get("patches", []):
        _apply_patch(objects, directory, spec)
    if "namespace" in k:
        for obj in objects:
            if obj.get("kind") not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = k["namespace"]
    if k.get("images"):
        for obj in objects:
            _set_images(obj, k["images"])
    return objects


def build(directory: Path | str) -> list[dict[str, Any]]:
    """The objects a kustomization produces (kustomize's semantics for the supported subset)."""
    objects = _build(Path(directory))
    _name_generated(objects)
    return objects


def _order(obj: dict[str, Any]) -> tuple[int, str, str]:
    kind = obj.get("kind", "")
    if kind in ORDER_FIRST:
        rank = ORDER_FIRST.index(kind)
    elif kind in ORDER_LAST:
        rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
    else:
        rank = len(ORDER_FIRST)
    return rank, kind, obj.get("metadata", {}).get("name", "")


def render(directory: Path | str) -> str:
    objects = sorted(build(directory), key=_order)
    return yaml.safe_dump_all(objects, sort_keys=True, width=1000)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sys.stdout.write(render(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
