"""clients/errors.py mirrors server/errors.py: same reasons, same codes."""

from __future__ import annotations

import grpc
import pytest

import clients.errors as client
import server.errors as srv

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
        (srv.BudgetExceeded, client.BudgetExceeded),
        (srv.Unavailable, client.Unavailable),
        (srv.InternalBug, client.InternalError),
    ],
)
def test_mirror(server_cls, client_cls):
    assert server_cls.code == client_cls.code and server_cls.reason == client_cls.reason
    err = client.from_rpc_error(FakeRpcError(server_cls.code, "msg", server_cls.reason))
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
