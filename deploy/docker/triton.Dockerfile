# Triton image for the MangaAssist GPU model repository.
#
# The GPU flavour of the repository (.build/triton/gpu) serves the ONNX models with the native
# onnxruntime backend (+ TensorRT accelerator); the tokenizer steps of the ensembles are
# python-backend models that import `tokenizers` and `numpy`. The stock NGC image has neither
# `tokenizers` nor a guaranteed numpy<2 (numpy 2 on the stub's path gives empty outputs), so
# build this image and point the chart at it:
#
#   docker build -f deploy/docker/triton.Dockerfile -t <registry>/mangaassist/tritonserver:24.10-py3-mangaassist.1 .
#   docker push <registry>/mangaassist/tritonserver:24.10-py3-mangaassist.1
#   helm upgrade --install ... --set triton.image.repository=<registry>/mangaassist/tritonserver \
#                              --set triton.image.tag=24.10-py3-mangaassist.1
ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.10-py3
FROM ${TRITON_IMAGE}

# Same versions the project pins for the CPU flavour (pyproject.toml): tokenizers 0.21.x, numpy < 2
# and ONNX Runtime 1.22 -- its CUDA build here, for llm_small (model_repository/backends/llm_model.py:
# a python-backend KV-cache loop that imports onnxruntime; the image's native onnxruntime *backend*
# is not importable from Python). Without it llm_small fails to load and, with
# --model-control-mode=none, Triton exits at start. Installed into the interpreter the python
# backend stub runs (system Python). tests/deploy/test_chart_settings.py checks this list against
# the models' imports.
RUN python3 -m pip install --no-cache-dir "tokenizers==0.21.*" "numpy<2" "onnxruntime-gpu==1.22.*" \
 && python3 -c "import tokenizers, numpy, onnxruntime; assert numpy.__version__.split('.')[0] == '1'; print('tokenizers', tokenizers.__version__, 'numpy', numpy.__version__, 'onnxruntime', onnxruntime.__version__, onnxruntime.get_available_providers())"

# Non-root (uid 1000 is the image's triton-server user); the chart also enforces it.
USER 1000:1000
ENV HOME=/tmp
ENTRYPOINT ["/opt/nvidia/nvidia_entrypoint.sh"]
CMD ["tritonserver", "--model-repository=/models", "--model-control-mode=none", "--strict-readiness=true"]
