"""The two stacks the service is compared with, each its own process on the same classifier:

* ``naive``: FastAPI + transformers, the way a first prototype serves a model -- one PyTorch forward per
  HTTP request on the fine-tuned checkpoint (``<build>/models/intent_classifier/hf``), tokenised by its HF
  tokenizer, a sync endpoint (FastAPI's thread pool), one uvicorn worker. ``POST /classify {"text": ...}``.
  One PyTorch thread (``--torch-threads``), which is generous to it: with torch's default (one OpenMP thread
  per core), on cores other processes also use, a lone forward took 75 ms median against 7.4 ms with one
  thread (measured here, load average ~7 on 2 cores): idle OpenMP workers spin-wait, as ORT's did.
* ``plain``: a gRPC server and ONNX Runtime, nothing else -- the served ONNX file run per request (no
  batcher, no Triton, no ensemble, no stub hops), tokenised in-process exactly like the served tokenizer
  model. It answers the service's own ``mangaassist.v1.MangaAssist/Classify``, so the same client drives it.

    python -m benchmarks.speed.servers naive|plain --port P [--build-dir .build]
"""

from __future__ import annotations

import argparse
import sys
from concurrent import futures
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from benchmarks import common
from server.intents import INTENT_LABELS

CLASSIFIER_ONNX = "intent_classifier_onnx"


class Query(BaseModel):
    """The naive server's request body (module level: FastAPI resolves the annotation by name)."""

    text: str


def naive_app(checkpoint: Path, torch_threads: int = 1):
    """The FastAPI app: one forward per request."""
    import torch
    from fastapi import FastAPI
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(torch_threads)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    app = FastAPI()

    @app.post("/classify")
    def classify(query: Query) -> dict:
        with torch.inference_mode():
            enc = tokenizer(query.text, return_tensors="pt", truncation=True, max_length=64)
            probs = model(**enc).logits.softmax(-1)[0]
        best = int(probs.argmax())
        return {"intent": labels[best], "confidence": float(probs[best])}

    return app


class PlainClassifier:
    """Tokenise like the served tokenizer model, run the served ONNX file with the served session options."""

    def __init__(self, repo: Path) -> None:
        from benchmarks.perf_analyzer.ceiling import served_threads, session
        from benchmarks.perf_analyzer.inputs import BucketTokenizer, tokenizer_for

        cfg = tokenizer_for(CLASSIFIER_ONNX)
        self.tokenizer = BucketTokenizer(cfg, repo / cfg.name / "1" / "tokenizer.json")
        self.session = session(repo / CLASSIFIER_ONNX / "1" / "model.onnx", served_threads(CLASSIFIER_ONNX))
        self.inputs = {i.name for i in self.session.get_inputs()}

    def __call__(self, texts: list[str]) -> np.ndarray:
        feed = {k: v for k, v in self.tokenizer.encode(texts).items() if k in self.inputs}
        return self.session.run(None, feed)[0]


def plain_server(repo: Path, port: int, workers: int = 8):
    import grpc
    from mangaassist.v1 import mangaassist_pb2 as pb
    from mangaassist.v1 import mangaassist_pb2_grpc as pb_grpc

    classifier = PlainClassifier(repo)

    class Servicer(pb_grpc.MangaAssistServicer):
        def Classify(self, request, context):  # noqa: N802 -- gRPC method name
            probs = classifier(list(request.texts))
            results = []
            for row in probs:
                best = int(np.argmax(row))
                results.append(pb.Classification(intent=INTENT_LABELS[best], confidence=float(row[best])))
            return pb.ClassifyResponse(results=results)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    pb_grpc.add_MangaAssistServicer_to_server(Servicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed.servers")
    parser.add_argument("kind", choices=("naive", "plain"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--build-dir", type=Path, default=common.DEFAULT_BUILD_DIR)
    parser.add_argument("--torch-threads", type=int, default=1, help="naive: PyTorch intra-op threads")
    args = parser.parse_args(argv)
    build = args.build_dir.resolve()
    if args.kind == "naive":
        import uvicorn

        uvicorn.run(naive_app(build / "models" / "intent_classifier" / "hf", args.torch_threads), host="127.0.0.1", port=args.port,
                    log_level="warning", access_log=False)
        return 0
    server = plain_server(build / "triton" / "cpu", args.port)
    server.start()
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
