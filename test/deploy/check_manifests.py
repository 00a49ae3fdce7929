#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Checks deploy/kubernetes/ without a cluster, against the typed models of
Debian's python3-kubernetes:

- every document is of a kind the client models, and every field of it, at
  any depth, is one the model has, with a value of the model's type (an
  unknown field, a misspelt one or a string where a list belongs fails);
- each document then deserializes into its model (required fields present);
- qocnetd's DaemonSet runs with hostNetwork and hostPID, is not privileged,
  drops ALL and adds exactly the capabilities of its systemd unit
  (CapabilityBoundingSet of deploy/systemd/qocnetd.service.in), and mounts
  /sys/fs/bpf, /lib/modules and /usr/src (those two read-only) and /run/qocnet;
- the analytics Deployment mounts nothing from the node but the process
  socket's directory, read-only, runs as a non-root uid with no capability,
  and that uid is one a tenant of qocnetd's ConfigMap admits.

Exit 0 and a line per document when all holds; else each problem, exit 1.
  test/deploy/check_manifests.py SOURCE_DIR
"""
import pathlib
import re
import sys

import yaml
from kubernetes import client

src = pathlib.Path(sys.argv[1])
problems = []

PRIMITIVE = {"str": str, "int": int, "float": (int, float), "bool": bool}


def check(value, type_name, path):
    """Walks `value` against the client's model type `type_name`."""
    if value is None:
        return
    if type_name in PRIMITIVE:
        ok = isinstance(value, PRIMITIVE[type_name]) and not (type_name == "int" and isinstance(value, bool))
        if not ok:
            problems.append(f"{path}: {value!r} is not a {type_name}")
        return
    if type_name in ("object", "datetime", "date"):
        return  # IntOrString, free-form objects, timestamps
    m = re.fullmatch(r"list\[(.*)\]", type_name)
    if m:
        if not isinstance(value, list):
            problems.append(f"{path}: a {type(value).__name__} where a list belongs")
            return
        for i, v in enumerate(value):
            check(v, m.group(1), f"{path}[{i}]")
        return
    m = re.fullmatch(r"dict\(([^,]*), (.*)\)", type_name)
    if m:
        if not isinstance(value, dict):
            problems.append(f"{path}: a {type(value).__name__} where a map belongs")
            return
        for k, v in value.items():
            check(v, m.group(2), f"{path}.{k}")
        return
    model = getattr(client.models, type_name, None)
    if model is None:
        problems.append(f"{path}: the client has no model {type_name}")
        return
    if not isinstance(value, dict):
        problems.append(f"{path}: a {type(value).__name__} where a {type_name} belongs")
        return
    by_json = {j: a for a, j in model.attribute_map.items()}
    for key, v in value.items():
        if key not in by_json:
            problems.append(f"{path}.{key}: no such field in {type_name}")
            continue
        check(v, model.openapi_types[by_json[key]], f"{path}.{key}")


def model_name(doc):
    group_version = doc.get("apiVersion", "")
    version = group_version.split("/")[-1]
    group = group_version.split("/")[0] if "/" in group_version else ""
    prefix = {"": "", "apps": "", "batch": ""}.get(group, group.split(".")[0].capitalize())
    return f"{prefix}{version.capitalize()}{doc.get('kind', '')}"


docs = {}
api = client.ApiClient()
files = sorted((src / "deploy" / "kubernetes").glob("*.yaml"))
if not files:
    problems.append("no manifests in deploy/kubernetes")
for f in files:
    for i, doc in enumerate(yaml.safe_load_all(f.read_text())):
        if doc is None:
            continue
        where = f"{f.name}#{i}"
        name = model_name(doc)
        if getattr(client.models, name, None) is None:
            problems.append(f"{where}: kind {doc.get('apiVersion')}/{doc.get('kind')} has no model ({name})")
            continue
        before = len(problems)
        check(doc, name, where)
        if len(problems) == before:
            try:
                api._ApiClient__deserialize(doc, name)  # the model's own constructor: required fields
            except (ValueError, TypeError) as e:
                problems.append(f"{where}: {name}: {e}")
        docs[(doc["kind"], doc["metadata"]["name"])] = doc
        print(f"{where}: {doc['kind']} {doc['metadata']['name']} ({name})")

def fail_if_any():
    if problems:
        for p in problems:
            print("check_manifests: " + p, file=sys.stderr)
        sys.exit(1)


fail_if_any()  # the policy below reads fields the models have vouched for

unit = (src / "deploy" / "systemd" / "qocnetd.service.in").read_text()
unit_caps = set()
for line in unit.splitlines():
    if line.startswith("CapabilityBoundingSet="):
        unit_caps |= {c.removeprefix("CAP_") for c in line.split("=", 1)[1].split()}
if not unit_caps:
    problems.append("qocnetd.service.in has no CapabilityBoundingSet")

ds = docs.get(("DaemonSet", "qocnetd"))
if not ds:
    problems.append("no DaemonSet qocnetd")
else:
    spec = ds["spec"]["template"]["spec"]
    if not spec.get("hostNetwork") or not spec.get("hostPID"):
        problems.append("qocnetd: hostNetwork and hostPID must both be true")
    named = [c for c in spec["containers"] if c["name"] == "qocnetd"]
    if len(named) != 1:
        problems.append("qocnetd: no container named qocnetd")
        fail_if_any()
    c = named[0]
    sc = c.get("securityContext", {})
    if sc.get("privileged", False):
        problems.append("qocnetd: privileged")
    caps = sc.get("capabilities", {})
    if caps.get("drop") != ["ALL"]:
        problems.append(f"qocnetd: drops {caps.get('drop')}, not ALL")
    if set(caps.get("add", [])) != unit_caps or len(caps.get("add", [])) != len(unit_caps):
        problems.append(f"qocnetd: adds {sorted(caps.get('add', []))}, its systemd unit {sorted(unit_caps)}")
    if sc.get("allowPrivilegeEscalation", True):
        problems.append("qocnetd: allowPrivilegeEscalation is not false")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path, read_only in (("/sys/fs/bpf", False), ("/lib/modules", True), ("/usr/src", True),
                            ("/run/qocnet", False)):
        m = mounts.get(path)
        host = volumes.get(m["name"], {}).get("hostPath", {}).get("path") if m else None
        if host != path:
            problems.append(f"qocnetd: {path} is not the node's {path}")
        elif bool(m.get("readOnly", False)) != read_only:
            problems.append(f"qocnetd: {path} should be {'read-only' if read_only else 'writable'}")

dep = docs.get(("Deployment", "analytics-counter"))
cfg = docs.get(("ConfigMap", "qocnetd-config"))
if not dep:
    problems.append("no Deployment analytics-counter")
else:
    spec = dep["spec"]["template"]["spec"]
    host_volumes = [v for v in spec.get("volumes", []) if "hostPath" in v]
    if [v["hostPath"]["path"] for v in host_volumes] != ["/run/qocnet/process"]:
        problems.append(f"analytics: mounts {[v['hostPath']['path'] for v in host_volumes]} of the node, "
                        "not only /run/qocnet/process")
    if spec.get("hostNetwork") or spec.get("hostPID"):
        problems.append("analytics: hostNetwork or hostPID")
    pod_sc = spec.get("securityContext", {})
    for c in spec["containers"]:
        sc = c.get("securityContext", {})
        if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
            problems.append(f"analytics/{c['name']}: capabilities not dropped to none")
        for m in c.get("volumeMounts", []):
            if not m.get("readOnly"):
                problems.append(f"analytics/{c['name']}: {m['mountPath']} is writable")
    uid = pod_sc.get("runAsUser")
    if not pod_sc.get("runAsNonRoot") or not uid:
        problems.append("analytics: not run as a non-root uid")
    if cfg:
        conf = yaml.safe_load(cfg["data"]["qocnetd.yaml"])
        if not any(t.get("uid") == uid for t in conf.get("tenants", [])):
            problems.append(f"analytics: no tenant of qocnetd-config admits uid {uid}")
    else:
        problems.append("no ConfigMap qocnetd-config")

fail_if_any()
print("check_manifests: ok")
