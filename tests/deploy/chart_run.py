"""Start the chart's workloads as local processes from a render (no cluster): the helpers of
tests/deploy/test_chart_processes.py (one release's pods) and tests/deploy/test_cluster_processes.py (three ensemble
replicas on shared state). What differs from a cluster is listed in test_chart_processes.py's docstring.

* :class:`Network` -- container ports -> free loopback ports, Service DNS names -> 127.0.0.1;
* :func:`start_rendered_triton` -- tritonserver with the Triton container's rendered flags on the CPU repository
  (minus :data:`NOT_SERVED_HERE`);
* :class:`Ensemble` -- ``python -m server`` (the image's ENTRYPOINT) with a render's config file, env and ports;
  ``metrics_url`` reads its Prometheus counters.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc
from server.triton_runtime import TritonServer, free_port, tritonserver_binary
from tests.deploy.chart_view import NAMESPACE, RELEASE, REPO, ContainerView, Rendered, dockerfile_instructions

BUILD_DIR = Path(os.environ.get("MANGAASSIST_BUILD_DIR", REPO / ".build"))
CPU_REPOSITORY = BUILD_DIR / "triton" / "cpu"
INDEX = BUILD_DIR / "index"
BUILT = CPU_REPOSITORY.is_dir() and (INDEX / "catalog.sqlite").is_file()
#: Off the request path and slow to load on CPU (llm_small: 518 MB); the service falls back without them.
NOT_SERVED_HERE = ("llm_small", "hallucination_scorer", "hallucination_scorer_onnx", "hallucination_tokenizer")
#: Paths the ensemble image provides (deploy/docker/ensemble.Dockerfile) -> what stands in for them here.
IMAGE_PATHS = {"/opt/mangaassist/index": INDEX, "/opt/mangaassist/guardrails": BUILD_DIR / "guardrails"}


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def health(target: str, service: str, credentials: grpc.ChannelCredentials | None = None,
            server_name: str | None = None, timeout: float = 2.0) -> str:
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    channel = grpc.secure_channel(target, credentials, options) if credentials else grpc.insecure_channel(target)
    with channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def tls_secret(directory: Path) -> dict[str, bytes]:
    """A CA and a server certificate for the ensemble Service's DNS names (what cert-manager would issue)."""
    svc = f"{RELEASE}-ensemble"
    sans = f"DNS:{svc}.{NAMESPACE}.svc,DNS:{svc}.{NAMESPACE}.svc.cluster.local,DNS:{svc},IP:127.0.0.1"
    d = directory
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)  # noqa: E731
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
        "-subj", "/CN=test-ca", "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", f"/CN={svc}",
        "-keyout", "tls.key", "-out", "tls.csr")
    (d / "ext.cnf").write_text(f"subjectAltName={sans}\n")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "ext.cnf", "-out", "tls.crt")
    return {name: (d / name).read_bytes() for name in ("tls.crt", "tls.key", "ca.crt")}


class Network:
    """Container ports -> loopback ports, Service DNS names -> 127.0.0.1 (what cluster networking does)."""

    def __init__(self, rendered: Rendered) -> None:
        self.rendered = rendered
        self.ports: dict[tuple[str, int], int] = {}  # (workload, containerPort) -> local port

    def bind(self, view: ContainerView) -> dict[int, int]:
        mapping = {p: free_port() for p in view.ports.values()}
        self.ports.update({(view.workload, p): local for p, local in mapping.items()})
        return mapping

    def service_address(self, host_port: str) -> str:
        """``<svc>.<ns>.svc[.<domain>]:<port>`` -> ``127.0.0.1:<local port of the target container port>``."""
        host, port = host_port.rsplit(":", 1)
        name = host.split(".")[0]
        svc = self.rendered.get("Service", name)
        sport = next(p for p in svc["spec"]["ports"] if p["port"] == int(port))
        selector = svc["spec"]["selector"]
        for (workload, container_port), local in self.ports.items():
            pod = self.rendered.get(*workload.split("/", 1))["spec"]["template"]
            if selector.items() <= pod["metadata"]["labels"].items():
                c = pod["spec"]["containers"][0]
                named = {p["name"]: p["containerPort"] for p in c["ports"]}
                target = sport["targetPort"]
                if named.get(target, target) == container_port:
                    return f"127.0.0.1:{local}"
        raise AssertionError(f"no running workload behind Service address {host_port}")

    def rewrite(self, text: str) -> str:
        domain = self.rendered.values["clusterDomain"]
        pattern = rf"([a-z0-9-]+\.{NAMESPACE}\.svc(?:\.{re.escape(domain)})?:\d+)"
        return re.sub(pattern, lambda m: self.service_address(m.group(1)), text)


def probe_port(view: ContainerView, probe: dict[str, Any], ports: dict[int, int]) -> int:
    port = (probe.get("grpc") or probe.get("httpGet"))["port"]
    return ports[view.ports.get(port, port) if isinstance(port, str) else port]



# ----------------------------------------------------------------------------- processes


class RenderedTriton(TritonServer):
    """tritonserver started with the Triton container's rendered argv (TritonServer does the rest: the
    python backend stub's environment, readiness wait, SIGTERM then kill of the process group)."""

    def __init__(self, argv: list[str], repository: Path, ports: dict[str, int], workdir: Path, env: dict[str, str]):
        exit_timeout = next(int(a.split("=", 1)[1]) for a in argv if a.startswith("--exit-timeout-secs="))
        super().__init__(repository, workdir=workdir, grpc_port=ports["grpc"], http_port=ports["http"],
                         metrics_port=ports["metrics"], startup_timeout_s=120, exit_timeout_s=exit_timeout, env=env)
        self.argv = argv

    def command(self, backend_dir: Path) -> list[str]:
        assert self.argv[0] == "tritonserver"
        return [str(tritonserver_binary()), *self.argv[1:], f"--backend-directory={backend_dir}"]



def start_rendered_triton(rendered: Rendered, secrets: dict[str, Any], networks: list[Network],
                          mktemp: Callable[[str], Path], models: dict[str, Path] | None = None,
                          ) -> tuple[RenderedTriton, ContainerView, dict[int, int]]:
    """The Triton container of ``rendered``, started on free ports that every network in ``networks`` reaches
    (each release's Service names resolve to it); ``mktemp``: tmp_path_factory.mktemp; ``models``: model
    directories served instead of the build's (e.g. the classifier with a second version)."""
    view = rendered.container_view(f"Deployment/{RELEASE}-triton", "tritonserver", secrets)
    ports = networks[0].bind(view)
    for network in networks[1:]:  # other releases reach the same Triton process
        network.ports.update({(view.workload, p): local for p, local in ports.items()})
    repository = mktemp("models")
    for model in CPU_REPOSITORY.iterdir():
        if model.name not in NOT_SERVED_HERE:
            (repository / model.name).symlink_to((models or {}).get(model.name, model).resolve())
    argv = []
    for arg in view.argv:
        flag, _, value = arg.partition("=")
        if flag == "--model-repository":
            arg = f"--model-repository={repository}"
        elif flag in ("--http-port", "--grpc-port", "--metrics-port"):
            arg = f"{flag}={ports[int(value)]}"
        argv.append(arg)
    named = {name: ports[p] for name, p in view.ports.items()}
    triton = RenderedTriton(argv, repository, named, mktemp("triton"), {**os.environ, **view.env})
    triton.start()
    return triton, view, ports


class Ensemble:
    """``python -m server`` (the image's ENTRYPOINT) with one release's rendered config, env and ports."""

    def __init__(self, which: str, deployment: dict[str, Any], root: Path) -> None:
        self.which = which
        self.rendered: Rendered = deployment["renders"][which]
        self.network: Network = deployment["networks"][which]
        self.view = self.rendered.container_view(f"Deployment/{RELEASE}-ensemble", "ensemble", deployment["secrets"])
        self.root = root
        self.deployment_secrets = deployment["secrets"]
        self.ports = self.network.bind(self.view)
        claims = deployment.get("claims", {})  # PersistentVolumeClaim name -> the host directory it holds
        volumes = {v["name"]: v for v in self.view.pod_spec.get("volumes", [])}
        for mount, volume in self.view.mounts.items():  # emptyDirs and mount points (files are written below)
            claim = volumes.get(volume, {}).get("persistentVolumeClaim", {}).get("claimName")
            if claim in claims:  # every pod mounting the claim sees the same directory
                (root / mount.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
                (root / mount.lstrip("/")).symlink_to(Path(claims[claim]).resolve())
            elif mount not in self.view.files:
                (root / mount.lstrip("/")).mkdir(parents=True, exist_ok=True)
        self.view.write_files(root)
        for image_path, stand_in in IMAGE_PATHS.items():
            (root / image_path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
            (root / image_path.lstrip("/")).symlink_to(stand_in.resolve())
        prefixes = (*self.view.mounts, *IMAGE_PATHS)
        config = root / "etc/mangaassist/config.yaml"
        text = config.read_text()
        for mount in self.view.mounts:  # a mounted directory (the /tmp emptyDir) or a path under it is this pod's own
            if mount not in self.view.files:
                text = re.sub(rf"(?<=[\s\"']){re.escape(mount.rstrip('/'))}(?=[/\s\"']|$)", f"{root}{mount.rstrip('/')}",
                              text, flags=re.M)
        for prefix in IMAGE_PATHS:
            text = text.replace(prefix, f"{root}{prefix}")
        config.write_text(self.network.rewrite(text))
        env = {}
        for key, value in self.view.env.items():
            value = self.view.remap(value, root, prefixes)
            if value.isdigit() and int(value) in self.ports:
                value = str(self.ports[int(value)])
            env[key] = self.network.rewrite(value)
        self.env = env
        steps = dockerfile_instructions(REPO / "deploy" / "docker" / "ensemble.Dockerfile")
        entrypoint = json.loads(next(a for op, a in reversed(steps) if op == "ENTRYPOINT"))
        assert entrypoint[0] == "python"
        self.argv = [sys.executable, *entrypoint[1:], *self.view.container.get("args", [])]
        self.log = root / "ensemble.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> "Ensemble":
        base = {k: os.environ[k] for k in ("PATH", "LANG", "LD_LIBRARY_PATH") if k in os.environ}
        base.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONPATH=f"{REPO}:{REPO / 'proto'}")
        with self.log.open("wb") as out:
            # cwd "/" in the image (no WORKDIR): the root here, so a relative path would miss like it would there
            self.process = subprocess.Popen(self.argv, env={**base, **self.env}, cwd=self.root,
                                            stdout=out, stderr=subprocess.STDOUT)
        return self

    def metric(self, name: str, **labels: str) -> float:
        """The sum of this process's Prometheus samples ``name`` whose labels include ``labels`` (the rendered
        metrics port); 0 when none is exported yet."""
        from prometheus_client.parser import text_string_to_metric_families

        port = self.ports[self.view.ports["metrics"]]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(float(sample.value) for family in text_string_to_metric_families(text) for sample in family.samples
                   if sample.name == name and labels.items() <= sample.labels.items())

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def probe_target(self, kind: str) -> tuple[str, str]:
        probe = self.view.probe(kind)
        return f"127.0.0.1:{probe_port(self.view, probe, self.ports)}", probe["grpc"].get("service", "")

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"{self.which} ensemble exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if health(*self.probe_target("readiness"), timeout=1) == "SERVING":
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.2)
        pytest.fail(f"{self.which} ensemble not ready after {timeout_s}s:\n{self.log_tail()}")

    # A caller: the Service's address, the rendered TLS settings, the token from the Secret.
    @property
    def tls(self) -> bool:
        return bool(self.rendered.values["tls"]["enabled"])

    def service_target(self) -> str:
        port = self.rendered.values["ensemble"]["ports"]["grpc"]
        return self.network.service_address(f"{RELEASE}-ensemble.{NAMESPACE}.svc.cluster.local:{port}")

    def credentials(self) -> grpc.ChannelCredentials | None:
        return grpc.ssl_channel_credentials(root_certificates=self._secret("tls")["ca.crt"]) if self.tls else None

    def _secret(self, which: str) -> dict[str, bytes]:
        v = self.rendered.values
        if which == "tls":
            name = v["tls"]["secretName"]
        else:
            name = v["ensemble"]["auth"]["existingSecret"] or f"{RELEASE}-ensemble-auth"
        obj = self.rendered.maybe("Secret", name)
        if obj is not None:
            return {k: base64.b64decode(x) for k, x in obj["data"].items()}
        return {k: x.encode() if isinstance(x, str) else x for k, x in self.deployment_secrets[name].items()}

    def token(self) -> str:
        key = self.rendered.values["ensemble"]["auth"]["secretKey"]
        return self._secret("auth")[key].decode().split(",")[0]

    def channel(self) -> grpc.Channel:
        target = self.service_target()
        if self.tls:
            name = f"{RELEASE}-ensemble.{NAMESPACE}.svc"
            return grpc.secure_channel(target, self.credentials(), [("grpc.ssl_target_name_override", name)])
        return grpc.insecure_channel(target)

    def stub(self) -> tuple[grpc.Channel, pb_grpc.MangaAssistStub]:
        channel = self.channel()
        return channel, pb_grpc.MangaAssistStub(channel)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

