"""Drift monitoring over the traffic log (model lifecycle II): ``signals`` (intent share shift, mean classifier
confidence, embedding-sketch KL, new pattern clusters), ``decision`` (model problem or data problem?),
``monitor`` (the service's periodic job and its gauges), ``report`` (JSON/Markdown/plots), ``labels`` (the
low-confidence sampler for labelling, Label Studio JSON out and in) and the CLI, ``python -m server.drift``."""
