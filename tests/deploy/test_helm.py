"""The Helm chart, rendered by a real Helm engine (helm-python-sdk = Helm v4 as a library).

Every manifest is validated against the Kubernetes 1.30 OpenAPI schemas (strict: unknown
fields fail) with kubernetes-validate, then the objects are checked for what reliability property 13
and docs/deploy.md ask of a production chart: Pod Security "restricted", gRPC probes on the
server's health services, grace > drain + preStop, GPU scheduling, Triton flags, network
isolation, autoscaling/v2, and a values schema that refuses bad input.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.L0

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "mangaassist"
PRODUCTION_VALUES = REPO / "deploy" / "helm" / "values-production.yaml"
KUBE_VERSION = "1.30"
RELEASE = "mangaassist"
NAMESPACE = "shop"
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}


# ----------------------------------------------------------------------------- rendering


class Rendered:
    """The parsed output of one `helm template`-equivalent render."""

    def __init__(self, manifests: dict[str, str], values: dict[str, Any]) -> None:
        self.manifests = manifests
        self.values = values
        self.objects: list[dict[str, Any]] = []
        for path, text in manifests.items():
            if path.endswith("NOTES.txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.objects.append(doc)

    @property
    def notes(self) -> str:
        return next(v for k, v in self.manifests.items() if k.endswith("NOTES.txt"))

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
        return matches[0]

    def maybe(self, kind: str, name: str) -> dict[str, Any] | None:
        matches = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        return matches[0] if matches else None

    def pod_specs(self) -> list[tuple[str, dict[str, Any]]]:
        specs = []
        for o in self.objects:
            if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
                specs.append((f"{o['kind']}/{o['metadata']['name']}", o["spec"]["template"]["spec"]))
            elif o["kind"] == "Pod":
                specs.append((f"Pod/{o['metadata']['name']}", o["spec"]))
        return specs

    # Shortcuts for the two workloads.
    @property
    def triton(self) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-triton")

    @property
    def ensemble(self) -> dict[str, Any]:
        return self.get("Deployment", f"{RELEASE}-ensemble")


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


@pytest.fixture(scope="module")
def chart():
    with helm_python.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def production_values() -> dict[str, Any]:
    return yaml.safe_load(PRODUCTION_VALUES.read_text())


def render(chart, overrides: dict[str, Any] | None = None) -> Rendered:
    manifests = chart.render(overrides or {}, name=RELEASE, namespace=NAMESPACE)
    return Rendered(manifests, chart.merge_values(overrides or {}))


@pytest.fixture(scope="module")
def default_render(chart) -> Rendered:
    return render(chart)


@pytest.fixture(scope="module")
def production_render(chart, production_values) -> Rendered:
    return render(chart, production_values)


@pytest.fixture(params=["default", "production"])
def rendered(request) -> Rendered:
    return request.getfixturevalue(f"{request.param}_render")


# ----------------------------------------------------------------------------- chart hygiene


def test_chart_metadata(chart):
    meta = chart.metadata
    assert meta["apiVersion"] == "v2"
    assert meta["name"] == "mangaassist"
    assert chart.schema is not None
    assert chart.schema["$schema"].startswith("http://json-schema.org/draft-07/schema")


@pytest.mark.parametrize("which", ["default", "production"])
def test_helm_lint_is_clean(which, production_values):
    values = production_values if which == "production" else None
    report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


def test_every_manifest_is_valid_kubernetes(rendered):
    seen = set()
    for obj in rendered.objects:
        seen.add(obj["kind"])
        if obj["kind"] in CRD_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
        assert obj["metadata"]["namespace"] == NAMESPACE
        assert obj["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget",
            "HorizontalPodAutoscaler", "ServiceAccount", "Pod"} <= seen


def test_crd_objects_have_the_operator_shape(production_render):
    monitor = production_render.get("ServiceMonitor", RELEASE)
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert monitor["spec"]["selector"]["matchLabels"]["mangaassist.io/scrape"] == "true"
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == ["metrics"]
    # Both ClusterIP services carry the scrape label and a port named "metrics"; headless ones don't.
    scraped = [s for s in production_render.of_kind("Service")
               if s["metadata"]["labels"].get("mangaassist.io/scrape") == "true"]
    assert sorted(s["metadata"]["name"] for s in scraped) == [f"{RELEASE}-ensemble", f"{RELEASE}-triton"]
    assert all("metrics" in {p["name"] for p in s["spec"]["ports"]} for s in scraped)

    rule = production_render.get("PrometheusRule", RELEASE)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    for alert in alerts.values():
        assert alert["expr"].strip() and re.fullmatch(r"\d+[smh]", alert["for"])
        assert alert["labels"]["severity"] in {"info", "warning", "critical"}
    assert "histogram_quantile(0.99" in alerts["MangaAssistEnsembleP99LatencyHigh"]["expr"]
    assert 'quantile="0.99"' in alerts["MangaAssistTritonP99LatencyHigh"]["expr"]
    queue = alerts["MangaAssistTritonQueueTimeHigh"]["expr"]
    assert "nv_inference_queue_duration_us" in queue and "nv_inference_request_success" in queue


def test_monitoring_objects_are_gated(default_render):
    assert not default_render.of_kind("ServiceMonitor")
    assert not default_render.of_kind("PrometheusRule")


def test_values_yaml_documents_every_field(chart):
    """A comment line sits directly above every chart-owned key of values.yaml."""
    schema = chart.schema
    lines = (CHART / "values.yaml").read_text().splitlines()

    def resolve(node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = schema["definitions"][node["$ref"].rsplit("/", 1)[-1]]
        return node

    stack: list[tuple[int, str, dict[str, Any] | None]] = []  # (indent, key, schema node)
    undocumented, checked = [], 0
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z0-9_.\-/]+):", line)
        if not m or line.lstrip().startswith(("#", "-")):
            continue
        indent, key = len(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if stack and stack[-1][2] is None:
            node = None  # inside a free-form map (nodeSelector, config, ...): data, not fields
        else:
            parent = resolve(stack[-1][2]) if stack else schema
            node = (parent.get("properties") or {}).get(key)
        if node is not None:  # a chart-owned field (free-form maps below it are data)
            checked += 1
            prev = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            if not prev.startswith("#"):
                undocumented.append(".".join([s[1] for s in stack] + [key]))
        stack.append((indent, key, node))
    assert checked > 150
    assert undocumented == []


# ----------------------------------------------------------------------------- security


def test_every_container_is_restricted(rendered):
    specs = rendered.pod_specs()
    assert len(specs) >= 3  # triton, ensemble, helm test pod
    for where, spec in specs:
        psc = spec["securityContext"]
        assert psc["runAsNonRoot"] is True, where
        assert psc["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec.get("hostNetwork") is not True and spec.get("hostPID") is not True, where
        assert spec["automountServiceAccountToken"] is False, where
        for c in spec.get("initContainers", []) + spec["containers"]:
            sc = c["securityContext"]
            label = f"{where}:{c['name']}"
            assert sc["runAsNonRoot"] is True, label
            assert sc["runAsUser"] == 1000, label
            assert sc["allowPrivilegeEscalation"] is False, label
            assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add"), label
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", label
            assert sc["readOnlyRootFilesystem"] is True, label
            assert sc.get("privileged") is not True, label
            assert c["resources"]["requests"] and c["resources"]["limits"], label
        for v in spec.get("volumes", []):
            assert "hostPath" not in v, f"{where}: hostPath volume {v['name']}"


def test_writable_paths_are_empty_dirs(rendered):
    for deployment, name in ((rendered.triton, "tritonserver"), (rendered.ensemble, "ensemble")):
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        mounts = {m["mountPath"]: m for m in container(deployment, name)["volumeMounts"]}
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_no_static_aws_credentials(rendered):
    for where, spec in rendered.pod_specs():
        for c in spec.get("initContainers", []) + spec["containers"]:
            names = set(env_of(c))
            assert not names & {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}, where


# ----------------------------------------------------------------------------- ensemble


def test_ensemble_probes_are_native_grpc_on_named_services(rendered):
    c = container(rendered.ensemble, "ensemble")
    tls = rendered.values["tls"]["enabled"]
    probe_port = rendered.values["tls"]["healthPort"] if tls else rendered.values["ensemble"]["ports"]["grpc"]
    assert c["livenessProbe"]["grpc"] == {"port": probe_port, "service": "liveness"}
    assert c["readinessProbe"]["grpc"] == {"port": probe_port, "service": "readiness"}
    assert c["startupProbe"]["grpc"]["service"] == "liveness"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports["grpc"] == 50051 and ports["metrics"] == 9464
    if tls:  # kubelet gRPC probes cannot speak TLS: a plaintext health-only port is exposed
        assert ports["grpc-health"] == probe_port != ports["grpc"]
        assert env_of(c)["MANGAASSIST_HEALTH_PORT"] == str(probe_port)


def test_ensemble_grace_exceeds_drain_plus_prestop(rendered):
    spec = rendered.ensemble["spec"]["template"]["spec"]
    c = container(rendered.ensemble, "ensemble")
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = int(env_of(c)["MANGAASSIST_SERVER_DRAIN_GRACE_S"])
    assert drain == rendered.values["ensemble"]["drainGraceSeconds"]
    assert spec["terminationGracePeriodSeconds"] > drain + int(pre_stop[1])


def test_ensemble_config_and_environment(rendered):
    c = container(rendered.ensemble, "ensemble")
    env = env_of(c)
    assert env["MANGAASSIST_CONFIG"] == "/etc/mangaassist/config.yaml"
    mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/etc/mangaassist/config.yaml")
    volume = next(v for v in rendered.ensemble["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    cm = rendered.get("ConfigMap", volume["configMap"]["name"])
    config = yaml.safe_load(cm["data"][mount["subPath"]])
    # The tpl'd defaults resolve to this release's Triton and region.
    triton_url = f"{RELEASE}-triton-headless.{NAMESPACE}.svc.cluster.local:8001"
    assert config["triton"]["url"] == env["MANGAASSIST_TRITON_URL"] == triton_url
    assert config["budgets"]["total_ms"] == 300
    # Flat llm.* keys, as server/settings.py's LLMSettings names them (test_chart_settings.py loads
    # the whole file through the real loader).
    bedrock = rendered.values["ensemble"]["bedrock"]
    assert config["llm"]["enabled"] is bedrock["enabled"]
    assert config["llm"]["bedrock_region"] == (bedrock["region"] or rendered.values["aws"]["region"])
    assert config["llm"]["small_model_id"] == bedrock["smallModelId"]
    assert config["llm"]["large_model_id"] == bedrock["largeModelId"]
    assert "bedrock" not in config["llm"]
    # The index path is where the ensemble image puts it, not the checkout's relative .build/index.
    index = rendered.values["ensemble"]["indexDir"]
    assert config["retrieval"]["index_dir"] == index == "/opt/mangaassist/index"
    assert config["retrieval"]["catalog_db"] == f"{index}/catalog.sqlite"
    # A config change rolls the pods.
    annotations = rendered.ensemble["spec"]["template"]["metadata"]["annotations"]
    assert re.fullmatch(r"[0-9a-f]{64}", annotations["checksum/config"])


def test_ensemble_bedrock_access_is_irsa(production_render):
    spec = production_render.ensemble["spec"]["template"]["spec"]
    sa = production_render.get("ServiceAccount", spec["serviceAccountName"])
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")


def test_tls_secret_is_mounted_when_enabled(production_render, default_render):
    c = container(production_render.ensemble, "ensemble")
    spec = production_render.ensemble["spec"]["template"]["spec"]
    tls = next(v for v in spec["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == "mangaassist-ensemble-tls"
    assert any(m["name"] == "tls" and m["readOnly"] for m in c["volumeMounts"])
    assert env_of(c)["MANGAASSIST_SERVER_TLS_CERT_FILE"] == "/etc/mangaassist/tls/tls.crt"
    assert env_of(c)["MANGAASSIST_SERVER_TLS_KEY_FILE"] == "/etc/mangaassist/tls/tls.key"
    assert "MANGAASSIST_TLS_CERT_FILE" not in env_of(c)  # not a setting: the loader ignores it
    default_spec = default_render.ensemble["spec"]["template"]["spec"]
    assert all(v["name"] != "tls" for v in default_spec["volumes"])


# ----------------------------------------------------------------------------- triton


def test_triton_runs_on_gpu_nodes(rendered):
    spec = rendered.triton["spec"]["template"]["spec"]
    c = container(rendered.triton, "tritonserver")
    gpus = rendered.values["triton"]["gpu"]["count"]
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == gpus >= 1
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(c["resources"][kind])
    assert spec["nodeSelector"]
    assert any(t["key"] == "nvidia.com/gpu" for t in spec["tolerations"])
    assert spec["runtimeClassName"] == "nvidia"


def test_triton_server_flags(rendered):
    c = container(rendered.triton, "tritonserver")
    assert c["command"] == ["tritonserver"]
    args = c["args"]
    for flag in ("--model-control-mode=explicit", "--load-model=*", "--strict-readiness=false",
                 "--metrics-config=summary_latencies=true", "--allow-metrics=true"):
        assert flag in args
    exit_timeout = [a for a in args if a.startswith("--exit-timeout-secs=")]
    assert exit_timeout == [f"--exit-timeout-secs={rendered.values['triton']['exitTimeoutSecs']}"]
    assert {"--http-port=8000", "--grpc-port=8001", "--metrics-port=8002"} <= set(args)
    # Admin protocols behind a header whose value comes from a Secret (never inline).
    grpc_restricted = [a for a in args if a.startswith("--grpc-restricted-protocol=")]
    assert len(grpc_restricted) == 1
    m = re.fullmatch(r"--grpc-restricted-protocol=([a-z-]+(?:,[a-z-]+)*):([a-z0-9-]+)=\$\(TRITON_ADMIN_VALUE\)",
                     grpc_restricted[0])
    assert m, grpc_restricted[0]
    protocols = set(m.group(1).split(","))
    assert {"model-repository", "model-config", "shared-memory", "statistics", "trace"} <= protocols
    assert not protocols & {"inference", "health", "metadata"}  # the ensemble's calls stay open
    assert any(a.startswith("--http-restricted-api=") for a in args)
    secret_ref = env_of(c)["TRITON_ADMIN_VALUE"]["secretKeyRef"]
    existing = rendered.values["triton"]["restrictedProtocols"]["existingSecret"]
    if existing:
        assert secret_ref["name"] == existing and not rendered.maybe("Secret", f"{RELEASE}-triton-admin")
    else:
        secret = rendered.get("Secret", secret_ref["name"])
        assert len(secret["data"][secret_ref["key"]]) >= 40


def test_triton_probes_and_startup_budget(rendered):
    c = container(rendered.triton, "tritonserver")
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 600  # TensorRT engine builds
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    spec = rendered.triton["spec"]["template"]["spec"]
    pre_stop = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > rendered.values["triton"]["exitTimeoutSecs"] + pre_stop


def test_triton_shm_is_memory_backed(rendered):
    spec = rendered.triton["spec"]["template"]["spec"]
    c = container(rendered.triton, "tritonserver")
    shm_mount = next(m for m in c["volumeMounts"] if m["mountPath"] == "/dev/shm")
    shm = next(v for v in spec["volumes"] if v["name"] == shm_mount["name"])
    assert shm["emptyDir"]["medium"] == "Memory" and shm["emptyDir"]["sizeLimit"]


def test_triton_model_repository_from_s3_with_irsa(production_render):
    spec = production_render.triton["spec"]["template"]["spec"]
    (init,) = spec["initContainers"]
    script = " ".join(init["command"] + init["args"])
    assert "aws s3 sync" in script and "aws-cli" in init["image"]
    uri = env_of(init)["MODEL_REPOSITORY_URI"]
    assert uri == production_render.values["triton"]["modelRepository"]["s3"]["uri"] and uri.startswith("s3://")
    sa = production_render.get("ServiceAccount", spec["serviceAccountName"])
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].endswith("model-reader")
    c = container(production_render.triton, "tritonserver")
    assert c["image"].endswith(":24.10-py3-mangaassist.1")
    models = next(m for m in c["volumeMounts"] if m["name"] == "models")
    assert models["mountPath"] == "/models" and models["readOnly"] is True
    assert "--model-repository=/models" in c["args"]


def test_triton_model_repository_from_pvc(chart):
    r = render(chart, {"triton": {"modelRepository": {"source": "pvc", "pvc": {"claimName": "triton-models"}}}})
    spec = r.triton["spec"]["template"]["spec"]
    assert "initContainers" not in spec
    models = next(v for v in spec["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"] == {"claimName": "triton-models", "readOnly": True}
    for obj in r.objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_default_image_is_ngc_and_notes_warn(default_render, production_render):
    c = container(default_render.triton, "tritonserver")
    assert c["image"] == "nvcr.io/nvidia/tritonserver:24.10-py3"
    assert "triton.Dockerfile" in default_render.notes
    assert "triton.Dockerfile" not in production_render.notes
    dockerfile = (REPO / "deploy" / "docker" / "triton.Dockerfile").read_text()
    assert "nvcr.io/nvidia/tritonserver:24.10-py3" in dockerfile
    assert re.search(r"tokenizers==0\.21", dockerfile) and "numpy<2" in dockerfile


# ----------------------------------------------------------------------------- traffic


def test_services_include_headless_for_client_side_balancing(rendered):
    for component, ports in (("triton", {"grpc": 8001, "http": 8000}), ("ensemble", {"grpc": 50051})):
        svc = rendered.get("Service", f"{RELEASE}-{component}")
        assert svc["spec"]["type"] == "ClusterIP"
        headless = rendered.get("Service", f"{RELEASE}-{component}-headless")
        assert headless["spec"]["clusterIP"] == "None"
        assert {p["name"]: p["port"] for p in headless["spec"]["ports"]} == ports
        assert headless["spec"]["selector"]["app.kubernetes.io/component"] == component


def _peers_select(peer: dict[str, Any], component: str) -> bool:
    return (set(peer) == {"podSelector"}
            and peer["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/component") == component
            and peer["podSelector"]["matchLabels"].get("app.kubernetes.io/instance") == RELEASE)


def test_network_policy_isolates_triton(rendered):
    policy = rendered.get("NetworkPolicy", f"{RELEASE}-triton")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "triton"
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    serving_ports = {8000, 8001}
    for rule in spec["ingress"]:
        ports = {p["port"] for p in rule["ports"]}
        assert rule.get("from"), "an ingress rule without 'from' admits everyone"
        if ports & serving_ports:
            assert ports == serving_ports
            assert all(_peers_select(p, "ensemble") for p in rule["from"])
        else:
            assert ports == {8002}
            assert all(set(p) == {"namespaceSelector"} and p["namespaceSelector"]["matchLabels"]
                       for p in rule["from"])


def test_network_policy_limits_ensemble_traffic(rendered):
    spec = rendered.get("NetworkPolicy", f"{RELEASE}-ensemble")["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    metrics_rule = next(r for r in spec["ingress"] if {p["port"] for p in r["ports"]} == {9464})
    assert all("namespaceSelector" in p and "podSelector" not in p for p in metrics_rule["from"])
    grpc_rule = next(r for r in spec["ingress"] if {p["port"] for p in r["ports"]} == {50051})
    assert any(_peers_select(p, "helm-test") for p in grpc_rule["from"])
    egress_ports = {(p["port"], p["protocol"]) for r in spec["egress"] for p in r["ports"]}
    assert {(8001, "TCP"), (53, "UDP"), (53, "TCP"), (443, "TCP")} <= egress_ports
    to_triton = next(r for r in spec["egress"] if 8001 in {p["port"] for p in r["ports"]})
    assert all(_peers_select(p, "triton") for p in to_triton["to"])


def test_rolling_updates_never_drop_capacity(rendered):
    for deployment in (rendered.triton, rendered.ensemble):
        strategy = deployment["spec"]["strategy"]
        assert strategy["type"] == "RollingUpdate"
        assert strategy["rollingUpdate"]["maxUnavailable"] == 0


def test_pod_disruption_budgets(rendered):
    for component in ("triton", "ensemble"):
        pdb = rendered.get("PodDisruptionBudget", f"{RELEASE}-{component}")
        assert pdb["apiVersion"] == "policy/v1"
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        assert "maxUnavailable" in pdb["spec"] or "minAvailable" in pdb["spec"]


def test_hpas_are_autoscaling_v2_with_behavior(rendered):
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    assert hpas
    for hpa in hpas:
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert {"scaleUp", "scaleDown"} <= set(hpa["spec"]["behavior"])
        target = rendered.get("Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        assert "replicas" not in target["spec"], "the HPA, not the Deployment, owns replicas"
    ensemble = rendered.get("HorizontalPodAutoscaler", f"{RELEASE}-ensemble")
    assert ensemble["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_production_shape(production_render):
    ensemble_hpa = production_render.get("HorizontalPodAutoscaler", f"{RELEASE}-ensemble")
    assert ensemble_hpa["spec"]["minReplicas"] == 3
    triton_hpa = production_render.get("HorizontalPodAutoscaler", f"{RELEASE}-triton")
    assert triton_hpa["spec"]["minReplicas"] == 2
    (metric,) = triton_hpa["spec"]["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "triton_avg_queue_time_us"
    assert metric["pods"]["target"]["type"] == "AverageValue"
    assert production_render.values["ensemble"]["replicas"] == 3
    assert production_render.values["triton"]["replicas"] == 2
    assert production_render.values["tls"]["enabled"] and production_render.values["monitoring"]["enabled"]


def test_replicas_without_autoscaling(chart):
    r = render(chart, {"ensemble": {"autoscaling": {"enabled": False}, "replicas": 4}})
    assert r.ensemble["spec"]["replicas"] == 4
    assert r.triton["spec"]["replicas"] == 1
    assert not r.of_kind("HorizontalPodAutoscaler")


def test_triton_can_live_elsewhere(chart):
    r = render(chart, {"triton": {"enabled": False}, "ensemble": {"tritonUrl": "triton.ml.svc.cluster.local:8001"}})
    assert not [o for o in r.objects if o["metadata"]["labels"]["app.kubernetes.io/component"] == "triton"]
    assert env_of(container(r.ensemble, "ensemble"))["MANGAASSIST_TRITON_URL"] == "triton.ml.svc.cluster.local:8001"
    config = yaml.safe_load(r.get("ConfigMap", f"{RELEASE}-ensemble-config")["data"]["config.yaml"])
    assert config["triton"]["url"] == "triton.ml.svc.cluster.local:8001"
    for obj in r.objects:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)


def test_helm_test_hook_checks_grpc_health(rendered):
    (pod,) = rendered.of_kind("Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    checked = set()
    for c in pod["spec"]["containers"]:
        assert "grpc-health-probe" in c["image"]
        args = dict(a.split("=", 1) for a in c["args"] if "=" in a)
        assert args["-addr"] == f"{RELEASE}-ensemble.{NAMESPACE}.svc.cluster.local:50051"
        checked.add(args["-service"])
        assert ("-tls" in c["args"]) == rendered.values["tls"]["enabled"]
    assert checked == {"", "readiness"}


# ----------------------------------------------------------------------------- bad values


BAD_VALUES = {
    "negative replicas": {"ensemble": {"replicas": -1}},
    "replicas of the wrong type": {"triton": {"replicas": "two"}},
    "missing image repository": {"ensemble": {"image": {"repository": None}}},
    "empty image repository": {"triton": {"image": {"repository": ""}}},
    "zero GPUs": {"triton": {"gpu": {"count": 0}}},
    "unknown model source": {"triton": {"modelRepository": {"source": "nfs"}}},
    "non-s3 model uri": {"triton": {"modelRepository": {"s3": {"uri": "https://bucket/models"}}}},
    "root allowed": {"containerSecurityContext": {"runAsNonRoot": False}},
    "privilege escalation": {"containerSecurityContext": {"allowPrivilegeEscalation": True}},
    "writable root filesystem": {"containerSecurityContext": {"readOnlyRootFilesystem": False}},
    "probe threshold zero": {"triton": {"probes": {"startup": {"failureThreshold": 0}}}},
    "port out of range": {"ensemble": {"ports": {"grpc": 70000}}},
    "typo at top level": {"ensembel": {"replicas": 2}},
    "typo in a chart field": {"triton": {"exitTimeoutSec": 30}},
    "wrong type for a flag": {"networkPolicy": {"enabled": "yes"}},
    "restricted protocol unknown": {"triton": {"restrictedProtocols": {"protocols": ["models"]}}},
    "bad role arn": {"ensemble": {"serviceAccount": {"roleArn": "my-role"}}},
}


@pytest.mark.parametrize("overrides", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_rejects_bad_values(chart, overrides):
    with pytest.raises(helm_python.HelmValuesError):
        chart.render(overrides, name=RELEASE, namespace=NAMESPACE)


BAD_COMBINATIONS = {
    "grace not above drain + preStop": (
        {"ensemble": {"drainGraceSeconds": 40, "preStopSeconds": 10, "terminationGracePeriodSeconds": 50}},
        "terminationGracePeriodSeconds"),
    "triton grace not above exit timeout + preStop": (
        {"triton": {"exitTimeoutSecs": 60, "preStopSeconds": 10, "terminationGracePeriodSeconds": 60}},
        "terminationGracePeriodSeconds"),
    "pvc source without a claim": ({"triton": {"modelRepository": {"source": "pvc"}}}, "claimName"),
    "tls without a secret": ({"tls": {"enabled": True}}, "tls.secretName"),
    "bedrock without a region": ({"aws": {"region": ""}, "ensemble": {"bedrock": {"enabled": True}}},
                                 "ensemble.bedrock.region (or aws.region) is required"),
    "hpa min above max": ({"ensemble": {"autoscaling": {"minReplicas": 5, "maxReplicas": 3}}}, "minReplicas"),
}


@pytest.mark.parametrize("overrides,message", BAD_COMBINATIONS.values(), ids=BAD_COMBINATIONS.keys())
def test_template_rejects_inconsistent_values(chart, overrides, message):
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(message)):
        chart.render(overrides, name=RELEASE, namespace=NAMESPACE)


SCHEMA_REJECTIONS_NAMING_THE_VALUE = {
    "GPU node selector with zero GPUs": (
        {"triton": {"gpu": {"count": 0}, "nodeSelector": {"nvidia.com/gpu.present": "true"}}}, "/triton/gpu/count"),
    "bedrock region malformed": ({"ensemble": {"bedrock": {"enabled": True, "region": "Virginia"}}},
                                 "/ensemble/bedrock/region"),
    "a token value in values": ({"ensemble": {"auth": {"tokens": "plain"}}}, "/ensemble/auth"),
    "relative index path": ({"ensemble": {"indexDir": ".build/index"}}, "/ensemble/indexDir"),
    # ensemble.config: the settings' own names only (schema generated from server/settings.py)
    "tokens in the ConfigMap": ({"ensemble": {"config": {"server": {"auth_tokens": ["plain"]}}}},
                                "at '/ensemble/config/server': additional properties 'auth_tokens' not allowed"),
    "nested bedrock config": ({"ensemble": {"config": {"llm": {"bedrock": {"region": "us-east-1"}}}}},
                              "at '/ensemble/config/llm': additional properties 'bedrock' not allowed"),
    "unknown settings section": ({"ensemble": {"config": {"tls": {"cert_file": "/x"}}}},
                                 "at '/ensemble/config': additional properties 'tls' not allowed"),
}


@pytest.mark.parametrize("overrides,where", SCHEMA_REJECTIONS_NAMING_THE_VALUE.values(),
                         ids=SCHEMA_REJECTIONS_NAMING_THE_VALUE.keys())
def test_schema_rejection_names_the_value(chart, overrides, where):
    with pytest.raises(helm_python.HelmValuesError, match=re.escape(where)):
        chart.render(overrides, name=RELEASE, namespace=NAMESPACE)


def test_schema_accepts_documented_examples(chart):
    """Values a platform engineer is told to use in values.yaml/README render and validate."""
    overrides = {
        "triton": {"runtimeClassName": "", "image": {"digest": "sha256:" + "a" * 64},
                   "responseCache": {"enabled": True}, "extraArgs": ["--rate-limit=execution_count"],
                   "podDisruptionBudget": {"minAvailable": 1}},
        "ensemble": {"image": {"tag": "abc123"}, "tritonClientSideLB": False,
                     "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
        "networkPolicy": {"tritonExtraIngressFrom": [{"podSelector": {"matchLabels": {"app": "perf-analyzer"}}}]},
    }
    r = render(chart, overrides)
    c = container(r.triton, "tritonserver")
    assert c["image"] == "nvcr.io/nvidia/tritonserver@sha256:" + "a" * 64
    assert "--cache-config=local,size=268435456" in c["args"]
    assert "runtimeClassName" not in r.triton["spec"]["template"]["spec"]
    assert env_of(container(r.ensemble, "ensemble"))["MANGAASSIST_TRITON_URL"].startswith(f"{RELEASE}-triton.")
    assert r.get("PodDisruptionBudget", f"{RELEASE}-triton")["spec"] == {
        "minAvailable": 1, "unhealthyPodEvictionPolicy": "AlwaysAllow",
        "selector": r.get("PodDisruptionBudget", f"{RELEASE}-triton")["spec"]["selector"]}
    for obj in r.objects:
        if obj["kind"] not in CRD_KINDS:
            kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    json.dumps(r.values)  # merged values stay plain data
