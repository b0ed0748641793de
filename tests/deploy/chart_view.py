"""What a rendered workload's container would see, materialised on this machine (no cluster).

``render(values)`` renders the chart with the real Helm engine; :meth:`Rendered.container_view` turns one
container of one workload into what the kubelet would hand the process:

* its environment: literal ``value``s, ``valueFrom.secretKeyRef`` / ``configMapKeyRef`` resolved from the
  rendered Secrets/ConfigMaps or from test fixtures (Secrets the chart expects to exist, e.g.
  ``existingSecret``), and ``$(VAR)`` references expanded the way the kubelet expands them;
* its mounted files: ConfigMap and Secret volumes (with ``subPath``/``items``) written under a root
  directory, so a mount path ``/etc/mangaassist/config.yaml`` becomes ``<root>/etc/mangaassist/config.yaml``;
* its ``command``/``args`` (kubelet-expanded) and probes.

:meth:`ContainerView.remap` rewrites absolute container paths in env values and args to the root
directory, the one translation a process outside a container needs.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import helm_python
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "mangaassist"
PRODUCTION_VALUES = REPO / "deploy" / "helm" / "values-production.yaml"
RELEASE = "mangaassist"
NAMESPACE = "shop"

_VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubelet ``$(VAR)`` expansion: defined names are replaced, unknown references stay as they are."""
    return _VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), text)


@dataclass
class ContainerView:
    """One container as its process sees it."""

    workload: str
    pod_spec: dict[str, Any]
    container: dict[str, Any]
    env: dict[str, str]
    files: dict[str, bytes]  # absolute container path -> content (ConfigMap/Secret volumes)
    argv: list[str]
    mounts: dict[str, str] = field(default_factory=dict)  # mountPath -> volume name

    @property
    def ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}

    def probe(self, kind: str) -> dict[str, Any]:
        return self.container[f"{kind}Probe"]

    def write_files(self, root: Path) -> None:
        for path, content in self.files.items():
            target = root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)

    def remap(self, value: str, root: Path, prefixes: tuple[str, ...]) -> str:
        """``/etc/...`` -> ``<root>/etc/...`` for values that start with one of the container ``prefixes``."""
        for prefix in prefixes:
            if value == prefix or value.startswith(prefix.rstrip("/") + "/"):
                return str(root) + value
        return value


class Rendered:
    """The parsed output of one render, with lookups by kind/name."""

    def __init__(self, manifests: dict[str, str], values: dict[str, Any]) -> None:
        self.manifests = manifests
        self.values = values
        self.objects = [d for k, v in manifests.items() if not k.endswith("NOTES.txt")
                        for d in yaml.safe_load_all(v) if d]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def maybe(self, kind: str, name: str) -> dict[str, Any] | None:
        return next((o for o in self.of_kind(kind) if o["metadata"]["name"] == name), None)

    def get(self, kind: str, name: str) -> dict[str, Any]:
        obj = self.maybe(kind, name)
        assert obj is not None, f"no {kind}/{name} rendered"
        return obj

    def pod_spec(self, workload: str) -> dict[str, Any]:
        kind, name = workload.split("/", 1)
        obj = self.get(kind, name)
        return obj["spec"] if kind == "Pod" else obj["spec"]["template"]["spec"]

    # ------------------------------------------------------------------ data sources
    def _secret_data(self, name: str, secrets: Mapping[str, Mapping[str, str]]) -> dict[str, bytes]:
        obj = self.maybe("Secret", name)
        if obj is None:  # a Secret the chart expects to exist (existingSecret, the TLS Secret)
            assert name in secrets, f"Secret {name} is neither rendered nor provided by the test"
            return {k: v.encode() if isinstance(v, str) else v for k, v in secrets[name].items()}
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return data

    def _configmap_data(self, name: str) -> dict[str, bytes]:
        obj = self.get("ConfigMap", name)
        return {k: v.encode() for k, v in (obj.get("data") or {}).items()}

    # ------------------------------------------------------------------ the view
    def container_view(self, workload: str, container: str,
                       secrets: Mapping[str, Mapping[str, str]] | None = None) -> ContainerView:
        secrets = secrets or {}
        spec = self.pod_spec(workload)
        c = next(x for x in spec["containers"] if x["name"] == container)
        env: dict[str, str] = {}
        for item in c.get("env", []):  # in order: $(VAR) sees only the variables defined before it
            if "value" in item:
                env[item["name"]] = expand(str(item["value"]), env)
            elif "secretKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["secretKeyRef"]
                env[item["name"]] = self._secret_data(ref["name"], secrets)[ref["key"]].decode()
            elif "configMapKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["configMapKeyRef"]
                env[item["name"]] = self._configmap_data(ref["name"])[ref["key"]].decode()
            else:
                raise AssertionError(f"{workload}:{container}: env {item['name']} has a source this view cannot resolve")
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        files: dict[str, bytes] = {}
        mounts: dict[str, str] = {}
        for m in c.get("volumeMounts", []):
            mounts[m["mountPath"]] = m["name"]
            volume = volumes[m["name"]]
            if "configMap" in volume:
                data, items = self._configmap_data(volume["configMap"]["name"]), volume["configMap"].get("items")
            elif "secret" in volume:
                data, items = self._secret_data(volume["secret"]["secretName"], secrets), volume["secret"].get("items")
            else:
                continue  # emptyDir / PVC: directories the test provides
            layout = {i["path"]: data[i["key"]] for i in items} if items else data
            if m.get("subPath"):
                files[m["mountPath"]] = layout[m["subPath"]]
            else:
                for rel, content in layout.items():
                    files[f"{m['mountPath'].rstrip('/')}/{rel}"] = content
        argv = [expand(a, env) for a in c.get("command", []) + c.get("args", [])]
        return ContainerView(workload, spec, c, env, files, argv, mounts)


def render(chart: "helm_python.Chart", values: dict[str, Any] | None = None) -> Rendered:
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE)
    return Rendered(manifests, chart.merge_values(values or {}))


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        current += " " + line.rstrip("\\").strip() if current else line.rstrip("\\").strip()
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]
