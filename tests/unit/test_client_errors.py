"""clients/errors.py mirrors server/errors.py: same reasons, same codes (the server's codes are its
interceptor's map, ``server.interceptors.status_of``: domain errors carry no gRPC types)."""

from __future__ import annotations

import grpc
import pytest

import clients.errors as client
import server.errors as srv
from server.interceptors import status_of

pytestmark = pytest.mark.L0


class FakeRpcError(grpc.RpcError):
    def __init__(self, code, details, reason=None):
        self._code, self._details = code, details
        self._trailing = (("mangaassist-reason", reason),) if reason else ()

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailing


@pytest.mark.parametrize(
    "server_cls, client_cls",
    [
        (srv.InvalidRequest, client.InvalidRequest),
        (srv.Unauthenticated, client.Unauthenticated),
        (srv.PermissionDenied, client.PermissionDenied),
        (srv.Overloaded, client.Overloaded),
        (srv.RateLimited, client.RateLimited),
        (srv.SessionRateLimited, client.SessionRateLimited),
        (srv.BudgetExceeded, client.BudgetExceeded),
        (srv.Unavailable, client.Unavailable),
        (srv.InternalBug, client.InternalError),
    ],
)
def test_mirror(server_cls, client_cls):
    assert status_of(server_cls) == client_cls.code and server_cls.reason == client_cls.reason
    err = client.from_rpc_error(FakeRpcError(status_of(server_cls), "msg", server_cls.reason))
    assert type(err) is client_cls and err.message == "msg"


def test_backend_reasons_and_code_only_statuses():
    err = client.from_rpc_error(FakeRpcError(grpc.StatusCode.UNAVAILABLE, "x", "backend_timeout"))
    assert isinstance(err, client.BackendTimeout) and isinstance(err, client.Unavailable)
    # Overloaded raised with reason "backend_overloaded": the code decides the class
    err = client.from_rpc_error(FakeRpcError(grpc.StatusCode.RESOURCE_EXHAUSTED, "x", "backend_overloaded"))
    assert isinstance(err, client.Overloaded) and err.reason == "backend_overloaded"
    err = client.from_rpc_error(FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded"))
    assert isinstance(err, client.BudgetExceeded)
    err = client.from_rpc_error(FakeRpcError(grpc.StatusCode.NOT_FOUND, "nope"))
    assert type(err) is client.MangaAssistError and err.code == grpc.StatusCode.NOT_FOUND


def test_domain_errors_carry_no_grpc_types_the_interceptor_maps_them():
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(srv))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "grpc" not in imported
    assert not any(isinstance(v, grpc.StatusCode) for cls in vars(srv).values() if isinstance(cls, type)
                   for v in vars(cls).values())
    # subclasses take their nearest mapped class's status; anything unmapped is INTERNAL
    assert {status_of(c) for c in (srv.BackendError, srv.BackendOverloaded, srv.BackendTimeout, srv.TierUnavailable)} == {
        grpc.StatusCode.UNAVAILABLE}
    assert status_of(srv.MangaAssistError("x")) == status_of(ValueError("x")) == grpc.StatusCode.INTERNAL
