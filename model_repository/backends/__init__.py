"""Python-backend model sources. The assembler copies each file into ``<model>/1/model.py``.

They run inside Triton's python backend stub, not in this package: keep them self-contained (numpy,
onnxruntime, tokenizers and triton_python_backend_utils only).
"""
