"""perf_analyzer sweeps of the served Triton models, with the in-process ONNX Runtime ceiling beside them."""
