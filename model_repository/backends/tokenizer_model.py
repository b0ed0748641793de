"""Triton python model: text (or text pairs) -> bucket-padded token tensors.

Each request is padded to the smallest configured bucket that fits its longest text, so requests in the
same bucket have identical shapes and the downstream ONNX model's dynamic batcher can merge them.
Config parameters: mode (single|pair), max_length, buckets ("16,32,64"), max_input_bytes, tokenizer_file.
"""

import json
import os

import numpy as np
import triton_python_backend_utils as pb_utils
from tokenizers import Tokenizer

OUTPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.mode = params["mode"]
        self.max_length = int(params["max_length"])
        self.buckets = sorted(int(b) for b in params["buckets"].split(","))
        self.max_input_bytes = int(params["max_input_bytes"])
        self.input_names = [i["name"] for i in config["input"]]
        path = os.path.join(args["model_repository"], args["model_version"], params["tokenizer_file"])
        self.tokenizer = Tokenizer.from_file(path)
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.no_padding()

    def _texts(self, request, name):
        raw = pb_utils.get_input_tensor_by_name(request, name).as_numpy().reshape(-1)
        texts = []
        for item in raw:
            if not isinstance(item, bytes):
                item = str(item).encode("utf-8")
            if len(item) > self.max_input_bytes:
                raise ValueError(f"{name} is {len(item)} bytes; the limit is {self.max_input_bytes} bytes")
            try:
                text = item.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{name} is not valid UTF-8 ({err.reason} at byte {err.start})") from None
            if not text.strip():
                raise ValueError(f"{name} must be a non-empty string")
            texts.append(text)
        return texts

    def _encode(self, request):
        columns = [self._texts(request, name) for name in self.input_names]
        if self.mode == "pair":
            encodings = self.tokenizer.encode_batch(list(zip(*columns)))
        else:
            encodings = self.tokenizer.encode_batch(columns[0])
        longest = max(len(e.ids) for e in encodings)
        width = next((b for b in self.buckets if b >= longest), self.buckets[-1])
        out = {name: np.zeros((len(encodings), width), dtype=np.int64) for name in OUTPUTS}
        for row, enc in enumerate(encodings):
            n = min(len(enc.ids), width)
            out["input_ids"][row, :n] = enc.ids[:n]
            out["attention_mask"][row, :n] = enc.attention_mask[:n]
            out["token_type_ids"][row, :n] = enc.type_ids[:n]
        return out

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                tensors = self._encode(request)
            except ValueError as err:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(str(err))))
                continue
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor(k, v) for k, v in tensors.items()]))
        return responses
