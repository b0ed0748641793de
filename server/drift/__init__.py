"""Drift monitoring over the traffic log (model lifecycle II): ``signals`` (intent share shift, mean classifier
confidence, embedding-sketch KL, new pattern clusters), ``decision`` (model problem or data problem?),
``monitor`` (the service's periodic job and its gauges), ``triggers`` (the reversal triggers' job), ``labels`` (the
low-confidence sampler for labelling, Label Studio JSON out and in). The operator's reports over the same log
(``mangaassist drift``: report, triggers, cost, label-export, label-import) are model_repository/lifecycle/drift.py."""
