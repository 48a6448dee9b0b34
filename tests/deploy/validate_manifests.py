#!/usr/bin/env python3
"""Validate Kubernetes manifests offline; run by tests/deploy_manifests.rs.

    validate_manifests.py DIR [DIR...]

Every YAML document under each DIR is checked: core kinds against the
Kubernetes JSON schemas kubernetes-validate ships (strict: unknown fields
fail), at the oldest and newest versions we support; ServiceMonitor,
PodMonitor and PrometheusRule against DIR's schemas/KIND.json (or
deploy/kubernetes/schemas). Files named *-patch.yaml are JSON 6902 patches,
kustomization.yaml a Kustomization: each one is built here (its resources,
recursively, then its patches applied; kubectl kustomize is not at hand) and
what it builds is validated too. Prints one JSON object: the documents
checked and, per kustomization directory, the objects it builds. Exit 1 with
every problem named when anything fails.
"""
import json
import pathlib
import sys

import jsonschema
import kubernetes_validate
import yaml

VERSIONS = ["1.29.0", "1.37.0"]
CUSTOM = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
SCHEMAS = pathlib.Path(__file__).resolve().parents[2] / "deploy/kubernetes/schemas"
problems = []


def documents(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problems.append(f"{path}: not YAML: {e}")
        return []


def validate(doc, where):
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind in CUSTOM:
        schema = json.loads((SCHEMAS / f"{kind.lower()}.json").read_text())
        for e in jsonschema.Draft7Validator(schema).iter_errors(doc):
            path = "/".join(str(p) for p in e.absolute_path)
            problems.append(f"{where}: {kind} {path}: {e.message}")
        return
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = "/".join(str(p) for p in e.path)
            problems.append(f"{where}: {kind} at {version}: {path}: {e.message}")
        except Exception as e:  # an unknown kind or version
            problems.append(f"{where}: {kind} at {version}: {e}")


def pointer(doc, path):
    parts = [p.replace("~1", "/").replace("~0", "~") for p in path.split("/")[1:]]
    for p in parts[:-1]:
        doc = doc[int(p)] if isinstance(doc, list) else doc[p]
    return doc, parts[-1]


def apply(doc, ops, where):
    for op in ops:
        parent, key = pointer(doc, op["path"])
        if op["op"] == "add" and isinstance(parent, list):
            if key == "-":
                parent.append(op["value"])
            else:
                parent.insert(int(key), op["value"])
        elif op["op"] in ("add", "replace"):
            if op["op"] == "replace" and key not in parent:
                problems.append(f"{where}: replace of missing {op['path']}")
            if isinstance(parent, list):
                parent[int(key)] = op["value"]
            else:
                parent[key] = op["value"]
        else:
            problems.append(f"{where}: unsupported patch op {op['op']}")


def build(directory):
    k = directory / "kustomization.yaml"
    spec = documents(k)[0]
    objects = []
    here = directory.resolve()
    for r in spec.get("resources", []):
        target = (directory / r).resolve()
        # kustomize's rules: a base may not contain the kustomization
        # (a cycle), a file must lie in or below its root.
        if target.is_dir() and (here == target or target in here.parents):
            problems.append(f"{k}: resource {r} contains this kustomization (kustomize: cycle detected)")
            continue
        if target.is_file() and here not in target.parents:
            problems.append(f"{k}: file {r} is outside the kustomization's root")
            continue
        if target.is_dir():
            if not (target / "kustomization.yaml").exists():
                problems.append(f"{k}: resource {r} has no kustomization.yaml")
                continue
            objects += build(target)
        elif target.exists():
            objects += documents(target)
        else:
            problems.append(f"{k}: resource {r} does not exist")
    for p in spec.get("patches", []):
        path, target = directory / p["path"], p.get("target", {})
        if here not in path.resolve().parents:
            problems.append(f"{k}: patch {p['path']} is outside the kustomization's root")
            continue
        matched = [o for o in objects
                   if all(o.get("kind") == v if f == "kind" else o["metadata"].get(f) == v
                          for f, v in target.items())]
        if len(matched) != 1:
            problems.append(f"{k}: patch {p['path']} matches {len(matched)} objects")
        for o in matched:
            apply(o, documents(path)[0], str(path))
    unknown = set(spec) - {"apiVersion", "kind", "resources", "patches"}
    if unknown or spec.get("kind") != "Kustomization":
        problems.append(f"{k}: unexpected {sorted(unknown) or spec.get('kind')}")
    names = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        problems.append(f"{k}: objects listed twice: {sorted(dupes)}")
    return objects


def main():
    checked, builds = [], {}
    for top in map(pathlib.Path, sys.argv[1:]):
        for path in sorted(top.rglob("*.yaml")):
            if path.name == "kustomization.yaml" or path.name.endswith("-patch.yaml"):
                continue
            for doc in documents(path):
                validate(doc, str(path))
                checked.append({"file": str(path), "kind": doc.get("kind"),
                                "name": doc.get("metadata", {}).get("name")})
        for k in sorted(top.rglob("kustomization.yaml")):
            objects = build(k.parent)
            for o in objects:
                validate(o, f"{k} (built)")
            builds[str(k.parent)] = objects
    print(json.dumps({"checked": checked, "builds": builds}))
    if problems:
        sys.exit("\n".join(problems))


if __name__ == "__main__":
    main()
