"""The committed stubs are exactly what ``python -m proto.generate`` produces from the .proto."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.L0

ROOT = Path(__file__).resolve().parents[2]
STUBS = ROOT / "proto" / "mangaassist" / "v1"


def test_regenerated_stubs_are_byte_identical(tmp_path):
    subprocess.run([sys.executable, "-m", "proto.generate", "--out", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    generated = sorted(p.name for p in (tmp_path / "mangaassist" / "v1").glob("mangaassist_pb2*"))
    assert generated == ["mangaassist_pb2.py", "mangaassist_pb2.pyi", "mangaassist_pb2_grpc.py"]
    for name in generated:
        assert filecmp.cmp(tmp_path / "mangaassist" / "v1" / name, STUBS / name, shallow=False), (
            f"{name} is stale: run `python -m proto.generate`"
        )


def test_service_surface():
    from mangaassist.v1 import mangaassist_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["MangaAssist"]
    assert pb.DESCRIPTOR.package == "mangaassist.v1"
    methods = {m.name: (m.client_streaming, m.server_streaming) for m in service.methods}
    assert methods == {
        "Chat": (False, False), "ChatStream": (False, True), "Classify": (False, False),
        "Retrieve": (False, False), "Describe": (False, False), "Feedback": (False, False),
    }
    fields = set(pb.ChatResponse.DESCRIPTOR.fields_by_name)
    assert {"answer", "cards", "intent", "intent_confidence", "tier", "model", "timings", "degraded",
            "guardrail_actions", "rule_decided", "usage", "request_id"} <= fields
    assert set(pb.ProductCard.DESCRIPTOR.fields_by_name) == {"asin", "title", "price", "currency", "in_stock"}
