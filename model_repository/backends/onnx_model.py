"""Triton python model: run an ONNX graph with ONNX Runtime on CPU, batching across requests.

Triton's dynamic batcher hands ``execute`` N requests; Triton does not concatenate them. We stack every
input along the batch axis (grouping requests whose non-batch shapes match), run the session once per
group and split the outputs back, checking the batch contract (outputs per request == inputs per request).
Config parameters: onnx_file, intra_op_threads, allow_spinning ("0"/"1": whether ORT's idle intra-op threads
spin-wait for work; default "0", because on a CPU shared with the tokenizer stubs, tritonserver and the
clients, a spinning thread burns cores that those need -- benchmarks/results/ort_spinning.md measures it).
"""

import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        path = os.path.join(args["model_repository"], args["model_version"], params["onnx_file"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(params.get("intra_op_threads", "1"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", params.get("allow_spinning", "0"))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        graph_inputs = {i.name for i in self.session.get_inputs()}
        self.input_names = [i["name"] for i in config["input"]]
        self.feed_names = [n for n in self.input_names if n in graph_inputs]
        self.output_names = [o["name"] for o in config["output"]]

    def execute(self, requests):
        arrays = [
            {n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.feed_names} for r in requests
        ]
        groups = {}
        for idx, feed in enumerate(arrays):
            key = tuple(feed[n].shape[1:] for n in self.feed_names)
            groups.setdefault(key, []).append(idx)
        responses = [None] * len(requests)
        for indices in groups.values():
            feed = {n: np.concatenate([arrays[i][n] for i in indices]) for n in self.feed_names}
            try:
                outputs = self.session.run(self.output_names, feed)
            except Exception as err:  # ORT raises its own exception types; report per request
                for i in indices:
                    responses[i] = pb_utils.InferenceResponse(error=pb_utils.TritonError(f"onnxruntime: {err}"))
                continue
            sizes = [arrays[i][self.feed_names[0]].shape[0] for i in indices]
            if any(len(o) != sum(sizes) for o in outputs):
                raise pb_utils.TritonModelException("batch contract broken: outputs != inputs -- this is a bug")
            offsets = np.cumsum([0, *sizes])
            for j, i in enumerate(indices):
                lo, hi = offsets[j], offsets[j + 1]
                tensors = [pb_utils.Tensor(n, np.ascontiguousarray(o[lo:hi])) for n, o in zip(self.output_names, outputs)]
                responses[i] = pb_utils.InferenceResponse(tensors)
        return responses
