"""TLS and mutual TLS on the service port (certificates made with the openssl CLI)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from clients import errors as client_errors
from clients.sdk import AsyncMangaAssistClient
from tests.support.requirements import needs

pytestmark = [pytest.mark.L0, needs("openssl", shutil.which("openssl") is not None, "the certificates are made with the openssl CLI")]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
             "-subj", "/CN=test-ca", cwd=d)
    for name in ("server", "client"):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.crt", "-days", "1", "-extfile", f"{name}.ext", cwd=d)
    return d


def _creds(pki: Path, *, client_cert: bool) -> grpc.ChannelCredentials:
    if client_cert:
        return grpc.ssl_channel_credentials(
            (pki / "ca.crt").read_bytes(), (pki / "client.key").read_bytes(), (pki / "client.crt").read_bytes()
        )
    return grpc.ssl_channel_credentials((pki / "ca.crt").read_bytes())


async def test_tls_and_plaintext_refused(make_server, pki):
    server = await make_server(server={"tls_cert_file": str(pki / "server.crt"), "tls_key_file": str(pki / "server.key")})
    target = f"localhost:{server.port}"
    async with AsyncMangaAssistClient(target, credentials=_creds(pki, client_cert=False)) as client:
        assert (await client.chat("hello")).intent == "chitchat"
    async with AsyncMangaAssistClient(target, timeout=2) as plaintext:
        with pytest.raises(client_errors.Unavailable):
            await plaintext.chat("hello")


async def test_mutual_tls_requires_a_client_certificate(make_server, pki):
    server = await make_server(server={
        "tls_cert_file": str(pki / "server.crt"), "tls_key_file": str(pki / "server.key"),
        "tls_client_ca_file": str(pki / "ca.crt"),
    })
    target = f"localhost:{server.port}"
    async with AsyncMangaAssistClient(target, credentials=_creds(pki, client_cert=True)) as client:
        assert (await client.chat("hello")).answer
    async with AsyncMangaAssistClient(target, credentials=_creds(pki, client_cert=False), timeout=2) as anonymous:
        with pytest.raises(client_errors.Unavailable):
            await anonymous.chat("hello")


async def test_plaintext_health_port_serves_only_health_while_tls_is_on(make_server, pki):
    """kubelet's gRPC probes cannot speak TLS: the chart points them at server.health_port."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    server = await make_server(server={
        "tls_cert_file": str(pki / "server.crt"), "tls_key_file": str(pki / "server.key"), "health_port": 0,
    })
    assert server.health_port and server.health_port != server.port
    async with grpc.aio.insecure_channel(f"localhost:{server.health_port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("liveness", "readiness"):
            reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        async with AsyncMangaAssistClient(f"localhost:{server.health_port}", timeout=2) as plaintext:
            with pytest.raises(client_errors.MangaAssistError) as err:  # the API is not on the health port
                await plaintext.chat("hello")
            assert err.value.code == grpc.StatusCode.UNIMPLEMENTED
