#!/usr/bin/env python3
"""Render a kustomization without kubectl: the subset of kustomize this repo uses.

    python deploy/k8s/render.py deploy/k8s/overlays/dev > dev.yaml

Prefer ``kubectl kustomize`` (or ``kustomize build``) where it exists; this is the
fallback for machines without it, and tests/unit/test_deploy_k8s.py checks that
both give the same objects whenever kubectl is there. Supported: ``resources``
(files and directories), ``components``, ``namespace``, ``images`` (newName,
newTag, digest) and ``patches`` (strategic-merge documents or JSON 6902 lists,
with an optional ``target`` of group/version/kind/name/namespace/labelSelector).
Anything else raises, so a kustomization that outgrows it fails loudly.
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "components", "namespace", "images", "patches"}

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


def build(directory: Path | str) -> list[dict[str, Any]]:
    """The objects a kustomization produces (kustomize's semantics for the supported subset)."""
    directory = Path(directory)
    k = _load_kustomization(directory)
    objects: list[dict[str, Any]] = []
    for entry in k.get("resources", []):
        path = directory / entry
        objects += build(path) if path.is_dir() else _load_docs(path)
    for entry in k.get("components", []):
        comp = directory / entry
        ck = _load_kustomization(comp)
        if ck.get("kind") != "Component":
            raise RenderError(f"{comp} is not a Component")
        for res in ck.get("resources", []):
            objects += _load_docs(comp / res)
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
