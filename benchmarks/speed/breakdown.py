"""Where a lone request's time goes (issue 11 #1): one classify request at a time over the 200 hand-written
messages, layer by layer, each layer timed by its own client and by Triton's statistics.

Layers, each run over every message after a warm-up (means per request):

1. in-process tokenisation: the served tokenizer's twin (``BucketTokenizer``: same tokenizer.json, truncation,
   bucket padding);
2. in-process ONNX Runtime, batch 1: the served file with the served session options;
3. Triton ``intent_classifier_onnx`` called directly with those token ids (tritonclient gRPC);
4. Triton ``intent_classifier``, the text-in ensemble (tokenizer stub -> ONNX stub);
5. the service's ``Classify`` RPC with one text (its own StageTimings say how long its Triton call took).

Triton's model statistics (``get_inference_statistics``, read around each layer) split every server-side
request into queue / compute_input / compute_infer / compute_output per composing model. From them:

* a python-backend *stub hop* = the model's compute_infer - the same work in-process (layer 1 or 2): the
  IPC to the stub process over shared memory, tensor (de)serialisation and the stub's Python around the work;
* the *ensemble's own scheduling* = the ensemble's request time - its steps' request times;
* *gRPC + client* = what the client measured - Triton's request time.

    python -m benchmarks.speed.breakdown [--build-dir .build] [--out benchmarks/results/speed]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from benchmarks import common
from benchmarks import speed

log = logging.getLogger("benchmarks.speed")

ENSEMBLE, TOKENIZER, ONNX = "intent_classifier", "intent_tokenizer", "intent_classifier_onnx"
PHASES = ("success", "queue", "compute_input", "compute_infer", "compute_output")


# ------------------------------------------------------------------------------------------ Triton statistics
def phase_totals(stats_json: Mapping[str, Any]) -> dict[str, dict[str, tuple[int, int]]]:
    """{model: {phase: (count, ns)}} from ``get_inference_statistics(as_json=True)``."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    for m in stats_json.get("model_stats", []):
        inf = m.get("inference_stats", {})
        out[m["name"]] = {p: (int(inf.get(p, {}).get("count", 0)), int(inf.get(p, {}).get("ns", 0))) for p in PHASES}
    return out


def phase_means_ms(before: Mapping[str, Any], after: Mapping[str, Any], model: str) -> dict[str, float | None]:
    """Mean milliseconds per request of every phase of ``model`` between two :func:`phase_totals`."""
    empty = {p: (0, 0) for p in PHASES}
    a, b = before.get(model, empty), after.get(model, empty)
    out: dict[str, float | None] = {}
    for p in PHASES:
        n = b[p][0] - a[p][0]
        out[p] = round((b[p][1] - a[p][1]) / n / 1e6, 3) if n > 0 else None
    return out


def derive(layers: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The lone text-in request (layer 4), hop by hop, from the layers' means. Each row: what, ms, how derived."""
    ens = layers["triton_ensemble"]
    paired = ens.get("paired_in_process_ms") or {}  # timed next to each Triton call (triton_layers), else its own pass
    tok_ms = paired.get("tokenize", layers["tokenize"]["mean_ms"])
    ort_ms = paired.get("ort", layers["ort"]["mean_ms"])
    st = ens["triton"]
    tok, onnx, whole = st[TOKENIZER], st[ONNX], st[ENSEMBLE]

    def g(d: Mapping[str, Any], k: str) -> float:
        return d.get(k) or 0.0

    rows = [
        ("gRPC + client (tritonclient, loopback)", ens["mean_ms"] - g(whole, "success"), "client mean - ensemble request time"),
        ("ensemble scheduling (Triton core)", g(whole, "success") - g(tok, "success") - g(onnx, "success"),
         "ensemble request - its two steps' requests"),
        ("tokenizer step: queue", g(tok, "queue"), "Triton stats"),
        ("tokenizer step: compute_input + compute_output", g(tok, "compute_input") + g(tok, "compute_output"), "Triton stats"),
        ("tokenizer step: stub hop (IPC, (de)serialisation)", g(tok, "compute_infer") - tok_ms, "compute_infer - in-process tokenisation"),
        ("tokenizer step: tokenisation itself", tok_ms, "in-process, same tokenizer.json, timed next to each call"),
        ("ONNX step: queue", g(onnx, "queue"), "Triton stats"),
        ("ONNX step: compute_input + compute_output", g(onnx, "compute_input") + g(onnx, "compute_output"), "Triton stats"),
        ("ONNX step: stub hop (IPC, (de)serialisation)", g(onnx, "compute_infer") - ort_ms, "compute_infer - in-process ORT"),
        ("ONNX step: ONNX Runtime itself (batch 1)", ort_ms, "in-process, same file and options, timed next to each call"),
    ]
    out = [{"hop": h, "ms": round(ms, 3), "from": how} for h, ms, how in rows]
    out.append({"hop": "total (client-observed, text in)", "ms": round(ens["mean_ms"], 3), "from": "layer 4"})
    return out


# ------------------------------------------------------------------------------------------ layers
def timed(fn: Callable[[Any], Any], items: Sequence[Any], warmup: int = 10) -> dict[str, float]:
    for item in items[:warmup]:
        fn(item)
    ms = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        ms.append((time.perf_counter() - start) * 1000.0)
    return common.latency_summary(ms)


def in_process_layers(repo: Path, texts: Sequence[str]) -> tuple[dict[str, Any], list[dict[str, np.ndarray]], Any]:
    from benchmarks.speed.servers import PlainClassifier

    plain = PlainClassifier(repo)
    feeds = [{k: v for k, v in plain.tokenizer.encode([t]).items() if k in plain.inputs} for t in texts]
    return {
        "tokenize": timed(lambda t: plain.tokenizer.encode([t]), texts),
        "ort": timed(lambda f: plain.session.run(None, f), feeds),
    }, feeds, plain


def triton_layers(url: str, texts: Sequence[str], feeds: Sequence[dict[str, np.ndarray]], local: Any = None) -> dict[str, Any]:
    """The ids-in and text-in Triton layers. ``local`` (a ``PlainClassifier``): after every text-in call, the same
    message is tokenised and run in-process too, so the hops are derived from in-process work timed under the same
    neighbours' load as the Triton call (timed in separate passes, a busy moment in one made a hop negative)."""
    import tritonclient.grpc as g

    client = g.InferenceServerClient(url)

    def ids_call(feed: dict[str, np.ndarray]) -> None:
        inputs = []
        for name, arr in feed.items():
            x = g.InferInput(name, list(arr.shape), "INT64")
            x.set_data_from_numpy(arr)
            inputs.append(x)
        assert client.infer(ONNX, inputs).as_numpy("PROBS").shape == (1, 8)

    def text_call(text: str) -> None:
        x = g.InferInput("TEXT", [1, 1], "BYTES")
        x.set_data_from_numpy(np.array([[text.encode()]], dtype=object))
        assert client.infer(ENSEMBLE, [x]).as_numpy("PROBS").shape == (1, 8)

    out = {}
    try:
        for layer, fn, items, models in (("triton_ids", ids_call, feeds, (ONNX,)),
                                         ("triton_ensemble", text_call, texts, (ENSEMBLE, TOKENIZER, ONNX))):
            for item in items[:10]:
                fn(item)
            paired: dict[str, list[float]] = {"tokenize": [], "ort": []}
            ms: list[float] = []
            before = phase_totals(client.get_inference_statistics(as_json=True))
            for item, feed in zip(items, feeds):
                start = time.perf_counter()
                fn(item)
                ms.append((time.perf_counter() - start) * 1000.0)
                if local is not None and layer == "triton_ensemble":
                    start = time.perf_counter()
                    local.tokenizer.encode([item])
                    paired["tokenize"].append((time.perf_counter() - start) * 1000.0)
                    start = time.perf_counter()
                    local.session.run(None, feed)
                    paired["ort"].append((time.perf_counter() - start) * 1000.0)
            after = phase_totals(client.get_inference_statistics(as_json=True))
            out[layer] = {**common.latency_summary(ms), "triton": {m: phase_means_ms(before, after, m) for m in models}}
            if paired["ort"]:
                out[layer]["paired_in_process_ms"] = {k: round(float(np.mean(v)), 3) for k, v in paired.items()}
    finally:
        client.close()
    return out


def service_layer(target: str, texts: Sequence[str]) -> dict[str, Any]:
    import grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    stages: dict[str, list[float]] = {}
    rule_decided = 0
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.MangaAssistStub(channel)

        def call(text: str) -> None:
            nonlocal rule_decided
            reply = stub.Classify(pb.ClassifyRequest(texts=[text]), timeout=10.0)
            for t in reply.timings:
                stages.setdefault(t.stage, []).append(t.ms)
            rule_decided += reply.results[0].rule_decided

        for text in texts[:10]:  # warm-up, not counted
            stub.Classify(pb.ClassifyRequest(texts=[text]), timeout=10.0)
        summary = timed(call, texts, warmup=0)
    return {**summary, "rule_decided": rule_decided,
            "stages_mean_ms": {k: round(float(np.mean(v)), 3) for k, v in stages.items()}}


def run(build_dir: Path, scratch: Path, *, triton_url: str | None = None, service_target: str | None = None,
        texts: Sequence[str] | None = None) -> dict[str, Any]:
    """Every layer; starts a Triton of its own when ``triton_url`` is None."""
    texts = list(texts or speed.handwritten_texts())
    repo = build_dir / "triton" / "cpu"
    layers, feeds, plain = in_process_layers(repo, texts)
    with contextlib.ExitStack() as stack:
        if triton_url is None:
            triton = speed.start_triton(speed.request_path_repo(build_dir, scratch), speed.PORT_BASE, models=(ENSEMBLE,))
            stack.callback(triton.stop)
            triton_url = triton.grpc_url
        layers.update(triton_layers(triton_url, texts, feeds, local=plain))
    if service_target:
        layers["service_classify"] = service_layer(service_target, texts)
    result = {"messages": len(texts), "layers": layers, "hops": derive(layers)}
    if service_target:
        svc = layers["service_classify"]
        result["service"] = {
            "client_mean_ms": svc["mean_ms"],
            "its_classify_stage_ms": svc["stages_mean_ms"].get("classify"),
            "over_direct_triton_ms": round(svc["mean_ms"] - layers["triton_ensemble"]["mean_ms"], 3),
        }
    return result


def render(result: Mapping[str, Any]) -> str:
    layers = result["layers"]
    names = {
        "tokenize": "in-process tokenisation (BucketTokenizer)",
        "ort": "in-process ONNX Runtime, batch 1",
        "triton_ids": "Triton intent_classifier_onnx, token ids in",
        "triton_ensemble": "Triton intent_classifier ensemble, text in",
        "service_classify": "service Classify RPC, one text",
    }
    rows = [[names[k], common.fmt(v["mean_ms"], 2), common.fmt(v["p50_ms"], 2), common.fmt(v["p99_ms"], 2)]
            for k, v in layers.items() if k in names]
    text = "### A lone request, layer by layer (mean / p50 / p99 ms over the messages, one at a time)\n\n"
    text += common.markdown_table(["layer", "mean", "p50", "p99"], rows)
    text += "\n### The text-in Triton request, hop by hop (means)\n\n"
    text += common.markdown_table(["hop", "ms", "derived from"], [[h["hop"], common.fmt(h["ms"], 2), h["from"]] for h in result["hops"]])
    text += ("\nA stub hop is a difference of two means (Triton's compute_infer, the same work in-process) and swings by "
             "about ±2 ms from run to run on cores shared with other work (once below zero); the queue rows follow "
             "the batcher's max_queue_delay and hold steady.\n")
    if "service" in result:
        s = result["service"]
        text += (f"\nService Classify: {common.fmt(s['client_mean_ms'], 2)} ms mean over all messages (rule-decided ones "
                 f"included); its classify stage (the Triton call as the service sees it, over the messages the model "
                 f"decided) {common.fmt(s['its_classify_stage_ms'], 2)} ms; "
                 f"{common.fmt(s['over_direct_triton_ms'], 2)} ms over calling the ensemble directly.\n")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed.breakdown", description=__doc__.split("\n\n")[0])
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--out", type=Path, default=speed.RESULTS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    out = args.out.resolve()
    result = {"device": common.device_info(), **run(args.build_dir.resolve(), common.DEFAULT_RESULTS_DIR / "tmp" / "speed")}
    common.write_json(out / "breakdown.json", result)
    (out / "breakdown.md").write_text(render(result))
    print(render(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
