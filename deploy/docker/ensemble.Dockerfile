# MangaAssist ensemble service (the Python gRPC API) for CPU nodes.
#
#   docker build -f deploy/docker/ensemble.Dockerfile -t <registry>/mangaassist/ensemble:<tag> .
#
# Build context: the repository root, after the project build has produced the retrieval
# index in .build/index (the service loads it at start-up; readiness waits for it).
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY server ./server
COPY clients ./clients
# The formats every plane shares (the model contract, the catalog layout): the only other package server/ imports.
COPY contracts ./contracts
# The `server` extra only (pyproject.toml): what `python -m server` runs -- no torch, optimum, onnxruntime,
# transformers, nvidia-pytriton or benchmark tools; the models run in the Triton image.
RUN python -m pip install --no-cache-dir --prefix=/install ".[server]"

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    PYTHONPATH=/opt/mangaassist/proto
COPY --from=build /install /usr/local
# Generated mangaassist.v1 stubs (proto/ is on sys.path in the project layout).
COPY proto /opt/mangaassist/proto
COPY .build/index /opt/mangaassist/index
COPY .build/guardrails /opt/mangaassist/guardrails
USER 1000:1000
EXPOSE 50051 9464
ENTRYPOINT ["python", "-m", "server"]
