"""The model build: data -> trained models -> ONNX variants -> Triton repositories (cpu + gpu flavours).

Each step is cached by a hash of its inputs (data files, config, code), so a second run with unchanged
inputs reuses everything. Reports land in ``<build>/reports/`` (``summary.json`` + one file per model).

    python -m model_repository build            # everything, cached
    python -m model_repository build --quick    # tiny training runs (tests / smoke checks)
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from model_repository import cache, export, spec
from contracts.models import INTENT_LABELS
from model_repository.training.common import base_checkpoint, read_jsonl, write_json

PKG = Path(__file__).resolve().parent
ROOT = PKG.parent
DEFAULT_BUILD_DIR = ROOT / ".build"


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 1234
    intent_epochs: int = 3
    intent_max_train: int | None = None
    reranker_max_queries: int = 1000
    adapter_epochs: int = 30
    quick: bool = False
    #: weights llm_small serves: "fp32" (the export), "int8" or "int4" (training/smollm.py quantize_weights)
    llm_weights: str = "fp32"

    @classmethod
    def quick_config(cls) -> "BuildConfig":
        return cls(intent_epochs=1, intent_max_train=256, reranker_max_queries=48, adapter_epochs=3, quick=True)


def _code(*names: str) -> list[Path]:
    return [PKG / n for n in names]


class Builder:
    def __init__(self, build_dir: Path = DEFAULT_BUILD_DIR, config: BuildConfig = BuildConfig()) -> None:
        self.dir = Path(build_dir)
        self.cfg = config
        self.data = self.dir / "data"
        self.models = self.dir / "models"
        self.reports = self.dir / "reports"
        self.checkpoint = base_checkpoint()
        self._tokenizer: Any = None

    # ------------------------------------------------------------------ helpers
    @property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        if self._tokenizer is None:
            self._tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        return self._tokenizer

    def _data_files(self, *rel: str) -> list[Path]:
        return [self.data / r for r in rel]

    # ------------------------------------------------------------------ steps
    def build_data(self) -> dict[str, Any]:
        from model_repository.datagen import generate_all

        key = cache.step_key("data", config={"seed": self.cfg.seed}, code=sorted((PKG / "datagen").glob("*.py")))

        def run(out: Path) -> dict[str, Any]:
            files = generate_all(out, seed=self.cfg.seed)
            return {name: sum(1 for _ in open(p, encoding="utf-8")) for name, p in files.items()}

        return cache.cached_step(self.data, key, run, label="data")

    def build_golden(self) -> dict[str, Any]:
        """The golden evaluation set (model_repository/golden) -> ``<build>/golden/golden.jsonl``."""
        from model_repository.golden import write_golden

        golden = PKG / "golden"
        key = cache.step_key(
            "golden",
            config={"seed": self.cfg.seed},
            inputs=self._data_files("catalog.jsonl", "policies.jsonl", "orders.jsonl", "series.jsonl", "intents"),
            code=sorted(golden.glob("*.py")) + [golden / "handwritten.jsonl", golden / "holdout.jsonl",
                                                ROOT / "contracts" / "catalog.py"],
        )
        def run(out: Path) -> dict[str, Any]:
            from model_repository.golden.conversations import write_conversations

            report = write_golden(self.data, out / "golden.jsonl", seed=self.cfg.seed)
            return {**report, **write_conversations(self.data, out / "conversations.jsonl", seed=self.cfg.seed)}

        return cache.cached_step(self.dir / "golden", key, run, label="golden")

    def build_intent(self) -> dict[str, Any]:
        from contracts.models import LABEL_TO_ID
        from model_repository.training.intent import classification_report, classifier_input, predict_torch, train_intent_classifier

        cfg = {"epochs": self.cfg.intent_epochs, "max_train": self.cfg.intent_max_train, "ckpt": str(self.checkpoint)}
        key = cache.step_key(
            "intent_classifier",
            config=cfg,
            inputs=self._data_files("intents"),
            code=_code("training/intent.py", "training/common.py", "export.py")
            + [ROOT / "tests/fixtures/intents_handwritten.jsonl", ROOT / "server/retrieval/query.py"],
        )

        def run(out: Path) -> dict[str, Any]:
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            report = train_intent_classifier(
                self.data, out, checkpoint=self.checkpoint, epochs=self.cfg.intent_epochs, max_train_examples=self.cfg.intent_max_train
            )
            hf = out / "hf"
            paths = export.export_variants(hf, out / "onnx", "softmax")
            test = read_jsonl(self.data / "intents" / "test.jsonl")
            texts = [classifier_input(t["text"]) for t in test]
            y = [LABEL_TO_ID[t["label"]] for t in test]
            tok = AutoTokenizer.from_pretrained(hf)
            reference = predict_torch(AutoModelForSequenceClassification.from_pretrained(hf), tok, texts)
            feeds = export.token_feeds(tok, texts, max_length=64)

            def quality(probs: np.ndarray, ref: np.ndarray) -> dict[str, float]:
                return {
                    "test_accuracy": classification_report(y, probs.argmax(1).tolist())["accuracy"],
                    "agreement_with_torch": round(float((probs.argmax(1) == ref.argmax(1)).mean()), 4),
                    "max_abs_diff": round(float(np.abs(probs - ref).max()), 5),
                }

            bench = lambda b: export.token_feeds(tok, (texts * 2)[:b], max_length=64, batch_size=b)[0]  # noqa: E731
            variants = export.measure_variants(paths, feeds, reference, quality, bench)
            torch_acc = report["test"]["accuracy"]
            chosen = export.choose(variants, lambda q: q["agreement_with_torch"] >= 0.99 and q["test_accuracy"] >= torch_acc - 0.005)
            report.update({"variants": variants, "served_cpu_variant": chosen, "served_gpu_variant": "fp32"})
            return report

        return cache.cached_step(self.models / "intent_classifier", key, run, label="intent_classifier")

    def _mean_pool_reference(self, texts: list[str], max_length: int) -> np.ndarray:
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(self.checkpoint).eval()
        out = []
        with torch.inference_mode():
            for i in range(0, len(texts), 32):
                enc = self.tokenizer(texts[i : i + 32], padding=True, truncation=True, max_length=max_length, return_tensors="pt")
                h = model(**enc).last_hidden_state
                m = enc["attention_mask"].unsqueeze(-1).float()
                out.append(torch.nn.functional.normalize((h * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=-1).numpy())
        return np.concatenate(out)

    def build_embedder(self) -> dict[str, Any]:
        key = cache.step_key("query_embedder", config={"ckpt": str(self.checkpoint)}, inputs=[self.data / "triples"], code=_code("export.py"))

        def run(out: Path) -> dict[str, Any]:
            paths = export.export_variants(self.checkpoint, out / "onnx", "mean_pool")
            queries = [t["query"] for t in read_jsonl(self.data / "triples" / "test.jsonl")][:256]
            reference = self._mean_pool_reference(queries, 256)
            feeds = export.token_feeds(self.tokenizer, queries, max_length=256)

            def quality(vecs: np.ndarray, ref: np.ndarray) -> dict[str, float]:
                cos = (vecs * ref).sum(1)
                return {"mean_cosine_to_torch": round(float(cos.mean()), 5), "min_cosine_to_torch": round(float(cos.min()), 5)}

            bench = lambda b: export.token_feeds(self.tokenizer, (queries * 2)[:b], max_length=256, batch_size=b)[0]  # noqa: E731
            variants = export.measure_variants(paths, feeds, reference, quality, bench)
            chosen = export.choose(variants, lambda q: q["min_cosine_to_torch"] >= 0.98)
            return {"variants": variants, "served_cpu_variant": chosen, "served_gpu_variant": "fp32"}

        return cache.cached_step(self.models / "query_embedder", key, run, label="query_embedder")

    def served_onnx(self, name: str, flavour: str = "cpu") -> Path:
        report = json.loads((self.models / name / "manifest.json").read_text())["report"]
        if name == "reranker" and flavour == "cpu":
            from model_repository import distill, quantize

            cheaper = distill.served_file(self.models) or quantize.served_file(self.models)
            if cheaper is not None:
                return cheaper
        if name == "embedding_adapter":
            return self.models / name / "model.onnx"
        return self.models / name / "onnx" / f"model.{report[f'served_{flavour}_variant']}.onnx"

    def embed_fn(self, max_length: int = 256) -> Any:
        """In-process twin of the served query_embedder (same ONNX file, same tokenizer)."""
        sess = export.session(self.served_onnx("query_embedder"))

        def embed(texts: list[str]) -> np.ndarray:
            out = []
            from model_repository.training.common import progress

            feeds = export.token_feeds(self.tokenizer, texts, max_length=max_length, batch_size=32)
            for feed in progress(feeds, desc="embedding", unit="batch", disable=len(feeds) < 20):
                out.append(sess.run(None, feed)[0])
            return np.concatenate(out).astype(np.float32)

        return embed

    def build_adapter(self, embedder_report: dict[str, Any]) -> dict[str, Any]:
        from model_repository.training.retrieval import train_adapter

        key = cache.step_key(
            "embedding_adapter",
            config={"epochs": self.cfg.adapter_epochs, "embedder": embedder_report["served_cpu_variant"]},
            inputs=self._data_files("documents.jsonl", "triples", "../models/query_embedder/manifest.json"),
            code=_code("training/retrieval.py"),
        )
        return cache.cached_step(
            self.models / "embedding_adapter",
            key,
            lambda out: train_adapter(self.data, out, self.embed_fn(), epochs=self.cfg.adapter_epochs),
            label="embedding_adapter",
        )

    def first_stage(self) -> Any:
        """(queries, k) -> (document rows, scores): the served first stage, embedder -> adapter -> inner
        product over the adapted documents, in-process."""
        adapter = export.session(self.models / "embedding_adapter" / "model.onnx")
        doc_adapted = np.load(self.models / "embedding_adapter" / "doc_vectors_adapted.npy")
        embed = self.embed_fn()

        def retrieve(queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
            q = adapter.run(None, {"EMBEDDING": embed(queries)})[0]
            sims = q @ doc_adapted.T
            rows = np.argsort(-sims, axis=1)[:, :k]
            return rows, np.take_along_axis(sims, rows, axis=1)

        return retrieve

    def build_reranker(self) -> dict[str, Any]:
        from model_repository.training.retrieval import evaluate_rerank, train_reranker

        seq = next(t.max_length for t in spec.TOKENIZERS if t.name == "rerank_tokenizer")  # what Triton will feed it
        key = cache.step_key(
            "reranker",
            config={"max_queries": self.cfg.reranker_max_queries, "seq": seq, "ckpt": str(self.checkpoint)},
            inputs=self._data_files("documents.jsonl", "triples", "../models/embedding_adapter/manifest.json"),
            code=_code("training/retrieval.py", "training/common.py", "export.py"),
        )

        def run(out: Path) -> dict[str, Any]:
            import torch
            from transformers import AutoModelForSequenceClassification, AutoTokenizer

            retrieve = self.first_stage()
            report = train_reranker(
                self.data, out, checkpoint=self.checkpoint, retrieve=retrieve, max_queries=self.cfg.reranker_max_queries, max_length=seq
            )
            hf = out / "hf"
            paths = export.export_variants(hf, out / "onnx", "score")
            tok = AutoTokenizer.from_pretrained(hf)
            docs = {d["doc_id"]: d["text"] for d in read_jsonl(self.data / "documents.jsonl")}
            test = read_jsonl(self.data / "triples" / "test.jsonl")[:128]
            pairs = [(t["query"], docs[t["positive_doc_id"]]) for t in test] + [(t["query"], docs[t["negative_doc_id"]]) for t in test]
            model = AutoModelForSequenceClassification.from_pretrained(hf).eval()
            with torch.inference_mode():
                ref = np.concatenate(
                    [model(**tok([a for a, _ in c], [b for _, b in c], padding=True, truncation=True, max_length=seq, return_tensors="pt")).logits.numpy()
                     for c in (pairs[i : i + 32] for i in range(0, len(pairs), 32))]
                )
            n = len(test)

            def quality(scores: np.ndarray, reference: np.ndarray) -> dict[str, float]:
                s, r = scores.reshape(-1), reference.reshape(-1)
                return {
                    "pairwise_accuracy": round(float((s[:n] > s[n:]).mean()), 4),
                    "pairwise_agreement_with_torch": round(float(((s[:n] > s[n:]) == (r[:n] > r[n:])).mean()), 4),
                    "max_abs_diff": round(float(np.abs(s - r).max()), 4),
                }

            feeds = export.token_feeds(tok, pairs, max_length=seq)
            bench = lambda b: export.token_feeds(tok, (pairs * 2)[:b], max_length=seq, batch_size=b)[0]  # noqa: E731
            variants = export.measure_variants(paths, feeds, ref, quality, bench)
            torch_acc = variants["fp32"]["quality"]["pairwise_accuracy"]
            chosen = export.choose(
                variants, lambda q: q["pairwise_agreement_with_torch"] >= 0.97 and q["pairwise_accuracy"] >= torch_acc - 0.01
            )
            sess = export.session(paths[chosen])

            def score_pairs(p: list[tuple[str, str]]) -> np.ndarray:
                return np.concatenate([sess.run(None, f)[0] for f in export.token_feeds(tok, p, max_length=seq)]).reshape(-1)

            report["rerank_eval"] = evaluate_rerank(self.data, retrieve, score_pairs)
            print(f"[reranker] {report['rerank_eval']}", flush=True)
            report.update({"variants": variants, "served_cpu_variant": chosen, "served_gpu_variant": "fp32"})
            return report

        return cache.cached_step(self.models / "reranker", key, run, label="reranker")

    def build_reranker_int8(self) -> dict[str, Any]:
        """The reranker's per-channel int8 variant, served on CPU if it keeps fp32's ordering (quantize.py)."""
        from model_repository import quantize

        return quantize.build_step(self, self.first_stage)

    def build_reranker_student(self) -> dict[str, Any]:
        """The reranker distilled into 3 of its layers, served on CPU if it passes the gate (distill.py)."""
        from model_repository import distill

        return distill.build_step(self, self.first_stage)

    def build_hallucination_scorer(self) -> dict[str, Any]:
        """The (source, claim) cross-encoder of the async hallucination scorer (training/hallucination.py)."""
        from model_repository.training import hallucination

        return hallucination.build_step(self)

    def build_smollm2(self) -> dict[str, Any]:
        """SmolLM2-135M-Instruct -> ONNX with KV cache (training/smollm.py), served as ``llm_small``."""
        from model_repository.training import smollm

        return smollm.build_smollm2(self.models / spec.LLM_EXPORT_OF["llm_small"], self.cfg.llm_weights)

    def build_index(self) -> dict[str, Any]:
        """Chunk catalog/policy/review documents and embed them through the served Triton embedder +
        adapter (the same models queries go through), into a FAISS index; plus the SQLite catalog.

        The embedding runs on a real tritonserver (``server/triton_runtime.py``, the launcher the service
        uses too) so chunk vectors come from exactly what serves queries: the tokenizer model, the chosen
        ONNX variant and the adapter, as configured for Triton."""
        from model_repository.index import builder, catalog

        key = cache.step_key(
            "index",
            config={"backend": "faiss"},
            inputs=[
                *self._data_files("documents.jsonl", "catalog.jsonl", "orders.jsonl", "series.jsonl", "policies.jsonl"),
                self.models / "query_embedder" / "manifest.json",
                self.models / "embedding_adapter" / "manifest.json",
            ],
            code=[
                *_code("index/chunking.py", "index/builder.py", "index/catalog.py"),
                ROOT / "contracts" / "catalog.py",  # the store layout (model_repository/catalog_schema.py re-exports it)
                ROOT / "server/retrieval/faiss_index.py",  # the index's on-disk layout (FaissIndex.save)
            ],
        )

        def run(out: Path) -> dict[str, Any]:
            from tokenizers import Tokenizer

            from server.triton_runtime import TritonServer

            db = catalog.build_catalog(
                self.data / "catalog.jsonl", self.data / "orders.jsonl", out / "catalog.sqlite", self.data / "series.jsonl",
                self.data / "policies.jsonl",
            )
            products = catalog.row_count(db, "products")
            tokenizer = Tokenizer.from_file(str(Path(self.checkpoint) / "tokenizer.json"))
            print("[index] starting tritonserver to embed chunks through query_embedder -> embedding_adapter", flush=True)
            # only the embedding models: the served ones, without loading the LLM and the other models
            repo = self.assemble("cpu", self.dir / "triton" / "index_embedders",
                                 models=("query_embedder", "embed_tokenizer", "query_embedder_onnx", "embedding_adapter"))
            try:
                with TritonServer(repo) as triton:
                    index = builder.build_index(
                        self.data / "documents.jsonl", tokenizer, triton_embed_fn(triton.grpc_url), out, backend="faiss", embedder_id=key
                    )
            finally:
                shutil.rmtree(repo, ignore_errors=True)
            return {"chunks": len(index), "products": products}

        return cache.cached_step(self.dir / "index", key, run, label="index", manifest_name="build_manifest.json")

    def rules_report(self) -> dict[str, Any]:
        """Precision/coverage of the service's rule fast path on the intent splits (model_repository/rule_report.py)."""
        from model_repository.rule_report import rules_report

        return rules_report(self.data, ROOT / "tests" / "fixtures" / "intents_handwritten.jsonl")

    # ------------------------------------------------------------------ repository
    def assemble(
        self, flavour: spec.Flavour, dest: Path | None = None, *, models: Iterable[str] | None = None, **render_kwargs: Any
    ) -> Path:
        """Lay out a loadable Triton repository for ``flavour`` (configs + model.py + weights).

        ``models``: only these (an ensemble needs its steps listed too); default every served model."""
        dest = Path(dest) if dest else self.dir / "triton" / flavour
        if dest.exists():
            shutil.rmtree(dest)
        configs = spec.render(flavour, **render_kwargs)
        if models is not None:
            wanted = set(models)
            unknown = wanted - set(configs)
            if unknown:
                raise ValueError(f"unknown model(s) {sorted(unknown)}; served: {sorted(configs)}")
            configs = {k: v for k, v in configs.items() if k in wanted}
        tokenizer_json = Path(self.checkpoint) / "tokenizer.json"
        for name, cfg in configs.items():
            version = dest / name / "1"
            version.mkdir(parents=True)
            (dest / name / "config.pbtxt").write_text(spec.to_pbtxt(cfg))
            for label_file in {o.label_filename for o in cfg.output if o.label_filename}:
                (dest / name / label_file).write_text("\n".join(INTENT_LABELS) + "\n")
            if name in {t.name for t in spec.TOKENIZERS}:
                shutil.copy2(PKG / "backends" / "tokenizer_model.py", version / "model.py")
                shutil.copy2(tokenizer_json, version / "tokenizer.json")
            elif name in spec.ARTEFACT_OF:
                src = self.served_onnx(spec.ARTEFACT_OF[name], flavour)
                _link_or_copy(src, version / "model.onnx")
                if flavour == "cpu":
                    shutil.copy2(PKG / "backends" / "onnx_model.py", version / "model.py")
            elif name in spec.LLM_EXPORT_OF:
                from model_repository.training.smollm import assemble_llm

                assemble_llm(dest, self.models / spec.LLM_EXPORT_OF[name], flavour,  # model.py + ONNX + tokenizer
                             self.cfg.llm_weights)
                (dest / name / "config.pbtxt").write_text(spec.to_pbtxt(cfg))  # the spec's rendering (same config)

        return dest

    def build_all(self) -> dict[str, Any]:
        started = time.perf_counter()
        summary: dict[str, Any] = {"config": asdict(self.cfg)}
        summary["data"] = self.build_data()
        summary["golden"] = self.build_golden()
        summary["intent_classifier"] = self.build_intent()
        embedder = self.build_embedder()
        summary["query_embedder"] = embedder
        summary["embedding_adapter"] = self.build_adapter(embedder)
        summary["reranker"] = self.build_reranker()
        summary["reranker_int8"] = self.build_reranker_int8()
        summary["reranker_student"] = self.build_reranker_student()
        summary["hallucination_scorer"] = self.build_hallucination_scorer()
        summary["llm_small"] = self.build_smollm2()
        summary["rule_fast_path"] = self.rules_report()
        for flavour in spec.FLAVOURS:
            summary[f"repository_{flavour}"] = str(self.assemble(flavour))
        summary["index"] = self.build_index()
        summary["build_seconds"] = round(time.perf_counter() - started, 1)
        self.reports.mkdir(parents=True, exist_ok=True)
        write_json(self.reports / "summary.json", summary)
        print(f"[build] done in {summary['build_seconds']}s; reports in {self.reports}/summary.json", flush=True)
        return summary


def triton_embed_fn(grpc_url: str, batch_size: int = 32) -> Any:
    """texts -> adapted, L2-normalised vectors via the served ``query_embedder`` and ``embedding_adapter``."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(grpc_url)

    def infer(model: str, name: str, array: np.ndarray, dtype: str, output: str) -> np.ndarray:
        tensor = grpcclient.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        return client.infer(model, [tensor], outputs=[grpcclient.InferRequestedOutput(output)]).as_numpy(output)

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            chunk = np.array([t.encode("utf-8") for t in texts[i : i + batch_size]], dtype=object).reshape(-1, 1)
            vectors = infer("query_embedder", "TEXT", chunk, "BYTES", "EMBEDDING")
            out.append(infer("embedding_adapter", "EMBEDDING", vectors.astype(np.float32), "FP32", "ADAPTED"))
        return np.concatenate(out).astype(np.float32)

    return embed


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        dst.hardlink_to(src)
    except OSError:
        shutil.copy2(src, dst)
