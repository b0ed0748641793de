"""Real tritonserver + real models through tritonclient gRPC (issue: Triton model platform)."""

import concurrent.futures as cf
import os

import numpy as np
import pytest
import tritonclient.grpc as g
from tritonclient.utils import InferenceServerException

from model_repository.build import Builder
from server.intents import INTENT_LABELS
from server.triton_runtime import TritonServer
from tests.support.counters import settle

pytestmark = pytest.mark.L1


def classify(client, texts):
    x = g.InferInput("TEXT", [len(texts), 1], "BYTES")
    x.set_data_from_numpy(np.array([[t.encode()] for t in texts], dtype=object))
    return client.infer("intent_classifier", [x]).as_numpy("PROBS")


def test_classifies_clear_examples(triton):
    client = g.InferenceServerClient(triton.grpc_url)
    cases = {
        "where is my order? it still hasn't arrived": "order_status",
        "I want to return this damaged box set and get a refund": "return_refund",
        "let me talk to a real human agent right now": "escalation",
        "any coupons or discounts on manga this week?": "price_deal",
    }
    probs = classify(client, list(cases))
    assert probs.shape == (4, len(INTENT_LABELS))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-4)
    assert [INTENT_LABELS[i] for i in probs.argmax(1)] == list(cases.values())


def test_dynamic_batching_merges_concurrent_requests(triton):
    client = g.InferenceServerClient(triton.grpc_url)
    before = client.get_inference_statistics("intent_classifier_onnx", as_json=True)["model_stats"][0]
    with cf.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: classify(g.InferenceServerClient(triton.grpc_url), [f"is vol {i} in stock?"]), range(96)))

    def counts():
        after = client.get_inference_statistics("intent_classifier_onnx", as_json=True)["model_stats"][0]
        return (int(after["inference_count"]) - int(before["inference_count"]),
                int(after["execution_count"]) - int(before["execution_count"]))

    # a composing model's statistics are recorded when its request is released, which can come after the
    # ensemble's response reached us: wait (bounded) until Triton has counted all 96, then judge the batching
    inferences, executions = settle(counts, lambda c: c[0] >= 96)
    assert inferences == 96 and executions < inferences, (inferences, executions)  # some executions ran batches > 1


@pytest.mark.parametrize(
    "payload, message",
    [(b"", "non-empty"), (b"x" * 100_000, "limit"), (b"\xff\xfe bad", "UTF-8")],
)
def test_bad_text_gets_a_clear_error_and_server_keeps_serving(triton, payload, message):
    client = g.InferenceServerClient(triton.grpc_url)
    x = g.InferInput("TEXT", [1, 1], "BYTES")
    x.set_data_from_numpy(np.array([[payload]], dtype=object))
    with pytest.raises(InferenceServerException, match=message):
        client.infer("intent_classifier", [x])
    assert classify(client, ["hello there"]).shape == (1, 8)


def test_wrong_dtype_is_rejected(triton):
    client = g.InferenceServerClient(triton.grpc_url)
    x = g.InferInput("TEXT", [1, 1], "FP32")
    x.set_data_from_numpy(np.zeros((1, 1), np.float32))
    with pytest.raises(InferenceServerException, match="(?i)data.?type|datatype"):
        client.infer("intent_classifier", [x])
    assert triton.is_ready()


def test_request_over_the_queue_bound_is_rejected_cleanly(built_repo, tmp_path):
    repo = Builder().assemble("cpu", tmp_path / "repo", max_queue_size=1)
    with TritonServer(repo) as server:
        client = g.InferenceServerClient(server.grpc_url)
        errors = []

        def call(i):
            try:
                classify(g.InferenceServerClient(server.grpc_url), [f"long message number {i} " * 8])
            except InferenceServerException as err:
                errors.append(str(err))

        with cf.ThreadPoolExecutor(32) as pool:
            list(pool.map(call, range(64)))
        assert errors and all("queue" in e.lower() for e in errors)
        assert classify(client, ["thanks!"]).shape == (1, 8)  # still serving


def test_launcher_cleans_up_when_the_body_fails(built_repo):
    server = TritonServer(built_repo)
    with pytest.raises(RuntimeError, match="boom"):
        with server:
            pid = server.pid
            raise RuntimeError("boom")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not server.is_alive()
