"""The drift signals, computed from two windows of traffic records (reference = the window before, current).

Plain numpy (+ scikit-learn's KMeans, already a dependency) rather than Evidently / NannyML / alibi-detect: the
three signals are a share difference, a mean and a histogram KL -- 60 lines here -- while ``evidently`` 0.7
resolves to statsmodels, plotly, litestar and more (a pip dry run) for the same numbers, and
the service imports this module in its periodic job. Measured: a 1,000-vs-1,000-turn comparison takes
~0.1 s here (docs/lifecycle.md, "Drift").

* **intent share shift**: per intent, current share - reference share, in points; alarm when any |shift| >
  ``intent_share_points`` (5);
* **mean classifier confidence** over model-decided turns (rules answer with confidence 1.0 and are left out);
  alarm below ``min_confidence`` (0.85);
* **embedding drift**: the query-embedding sketches of both windows are assigned to the reference window's
  six k-means clusters; KL(current || reference) of the cluster shares (add-half smoothing), less the
  estimator's small-sample bias ((k-1)/2 x (1/n_ref + 1/n_cur)); alarm when it is above ``kl_threshold`` (an
  effect-size floor) *and* the G-test of the same cluster counts says sampling alone is unlikely (p < ``kl_alpha``). (Per-dimension
  KL of the sketch marginals is kept as the report's diagnostic: on the real run it blurred a mix shift.)
* **new pattern clusters**, two views, alarm on either: *new vocabulary* -- the share of current turns using
  words the reference window (nearly) never used, each in >= 1% of current turns, above ``new_term_share``;
  *embedding outliers* -- current sketches farther from every reference centroid than the reference's own
  95th-percentile distance, above ``outlier_share`` (5% expected with no drift). On the real run (docs/lifecycle.md) the
  new slang embedded close to ordinary questions -- MiniLM reads "is vol 3 bussin" as a product question -- so
  the vocabulary view is the one that caught it. Both are reported with sample messages and the new terms:
  what a labeller looks at.
"""

from __future__ import annotations

import collections
import re
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from server.intents import INTENT_LABELS
from server.settings import DriftSettings

OUTLIER_QUANTILE = 0.95


@dataclass(frozen=True)
class PatternCluster:
    size: int
    share: float  # of the current window
    examples: tuple[str, ...]  # redacted messages nearest the cluster's centre
    new_terms: tuple[str, ...]  # words frequent here and (nearly) absent from the reference window


@dataclass(frozen=True)
class DriftSignals:
    n_reference: int
    n_current: int
    intent_share_reference: dict[str, float]
    intent_share_current: dict[str, float]
    intent_shift_points: dict[str, float]
    max_shift_points: float
    max_shift_intent: str
    confidence_reference: float | None
    confidence_current: float | None
    embedding_kl: float | None
    embedding_p: float | None
    kl_per_dim: tuple[float, ...]
    outlier_share: float | None
    new_term_share: float
    new_patterns: tuple[PatternCluster, ...]
    alarms: dict[str, bool]
    sufficient: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def firing(self) -> list[str]:
        return [name for name, on in self.alarms.items() if on]


def intent_shares(records: Sequence[Any]) -> dict[str, float]:
    counts = collections.Counter(r.intent for r in records if r.intent and not r.blocked)
    total = sum(counts.values())
    return {intent: (counts[intent] / total if total else 0.0) for intent in INTENT_LABELS}


def mean_confidence(records: Sequence[Any]) -> float | None:
    values = [r.confidence for r in records if _model_decided(r)]
    return float(np.mean(values)) if values else None


def outage_share(records: Sequence[Any]) -> float:
    return sum("classifier_unavailable" in r.degraded for r in records) / len(records) if records else 0.0


def _model_decided(r: Any) -> bool:
    return bool(r.intent) and not r.rule_decided and not r.blocked and "classifier_unavailable" not in r.degraded


def sketches(records: Sequence[Any]) -> np.ndarray:
    rows = [r.sketch for r in records if r.sketch]
    if not rows:
        return np.zeros((0, 0), dtype=np.float64)
    width = collections.Counter(len(s) for s in rows).most_common(1)[0][0]
    return np.asarray([s for s in rows if len(s) == width], dtype=np.float64)


def kl_divergence(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> tuple[float, tuple[float, ...]]:
    """Mean over dimensions of KL(current || reference) on the reference's quantile bins (add-half smoothing)."""
    per_dim = []
    for j in range(reference.shape[1]):
        inner = np.quantile(reference[:, j], np.linspace(0, 1, bins + 1)[1:-1])
        p = np.bincount(np.searchsorted(inner, reference[:, j], side="right"), minlength=bins) + 0.5
        q = np.bincount(np.searchsorted(inner, current[:, j], side="right"), minlength=bins) + 0.5
        p, q = p / p.sum(), q / q.sum()
        per_dim.append(float(np.sum(q * np.log(q / p))))
    return float(np.mean(per_dim)), tuple(round(v, 5) for v in per_dim)


def occupancy_kl(reference: np.ndarray, current: np.ndarray, clusters: int = 6, model: Any = None) -> tuple[float, float]:
    """(KL, p-value). KL(current || reference) of the share of sketches in each of the reference's k-means
    clusters (add-half smoothing), less the plug-in estimator's bias ((k-1)/2 x (1/n + 1/m)): a joint view of the
    embedding distribution, so a shift in the *mix* of kinds of query shows, which per-dimension marginals blur.
    The p-value is the G-test of homogeneity on the same 2 x k table: how likely a KL this size is from sampling
    alone at these window sizes (a 500-turn window's noise is ~4x a 2,000-turn one's)."""
    from scipy.stats import chi2_contingency

    model = model if model is not None else _kmeans(reference, clusters)
    k = model.n_clusters
    counts = np.stack([np.bincount(model.predict(reference), minlength=k), np.bincount(model.predict(current), minlength=k)])
    p, q = counts[0] + 0.5, counts[1] + 0.5
    p, q = p / p.sum(), q / q.sum()
    raw = float(np.sum(q * np.log(q / p)))
    kl = max(0.0, raw - (k - 1) / 2 * (1 / len(reference) + 1 / len(current)))
    table = counts[:, counts.sum(axis=0) > 0]
    p_value = float(chi2_contingency(table, lambda_="log-likelihood")[1]) if table.shape[1] > 1 else 1.0
    return kl, p_value


_WORD = re.compile(r"[a-z][a-z']{2,}")


def new_terms(messages: Sequence[str], reference: Sequence[str], top: int = 5, min_count: int = 3) -> tuple[str, ...]:
    """Words at least ``min_count`` times in ``messages`` and at a >= 10x lower rate in ``reference``."""
    cur = collections.Counter(w for m in messages for w in set(_WORD.findall(m.lower())))
    ref = collections.Counter(w for m in reference for w in set(_WORD.findall(m.lower())))
    n_cur, n_ref = max(1, len(messages)), max(1, len(reference))
    found = [(c, w) for w, c in cur.items() if c >= min_count and ref[w] / n_ref * 10 <= c / n_cur]
    return tuple(w for _, w in sorted(found, key=lambda t: (-t[0], t[1]))[:top])


def new_vocabulary(reference: Sequence[Any], current: Sequence[Any]) -> tuple[float, PatternCluster | None]:
    """The share of current turns using words the reference window (nearly) never used -- at least 1% of the
    current turns each (and >= 5 turns), so one-off names and typos do not count -- and those turns as a cluster."""
    messages = [r.message for r in current]
    terms = new_terms(messages, [r.message for r in reference], top=20, min_count=max(5, len(current) // 100))
    if not terms:
        return 0.0, None
    wanted = set(terms)
    hits = [m for m in messages if wanted & set(_WORD.findall(m.lower()))]
    share = len(hits) / len(current)
    return share, PatternCluster(size=len(hits), share=round(share, 4), examples=tuple(hits[:5]), new_terms=terms[:8])


def _kmeans(x: np.ndarray, k: int, seed: int = 0) -> Any:
    from sklearn.cluster import KMeans

    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # on 2 shared cores, BLAS/OpenMP threads fighting the service cost 5x here
        return KMeans(n_clusters=max(1, min(k, len(x))), n_init=2, random_state=seed).fit(x)


def pattern_outliers(
    ref_records: Sequence[Any], cur_records: Sequence[Any], cfg: DriftSettings, model: Any = None
) -> tuple[float | None, tuple[PatternCluster, ...]]:
    ref = [r for r in ref_records if r.sketch]
    cur = [r for r in cur_records if r.sketch]
    if len(ref) < cfg.clusters * 5 or not cur:
        return None, ()
    x_ref, x_cur = sketches(ref), sketches(cur)
    if x_ref.shape[1] != x_cur.shape[1]:
        return None, ()
    model = model if model is not None else _kmeans(x_ref, cfg.clusters)
    d_ref = np.min(model.transform(x_ref), axis=1)
    radius = float(np.quantile(d_ref, OUTLIER_QUANTILE))
    d_cur = np.min(model.transform(x_cur), axis=1)
    outlier = d_cur > radius
    share = float(outlier.mean())
    if share <= cfg.outlier_share:
        return share, ()
    idx = np.flatnonzero(outlier)
    sub = _kmeans(x_cur[idx], 3, seed=1)
    ref_messages = [r.message for r in ref_records]
    clusters = []
    for c in range(sub.n_clusters):
        members = idx[sub.labels_ == c]
        if len(members) < 3:
            continue
        centre_dist = np.linalg.norm(x_cur[members] - sub.cluster_centers_[c], axis=1)
        nearest = members[np.argsort(centre_dist)[:5]]
        messages = [cur[i].message for i in members]
        clusters.append(PatternCluster(
            size=int(len(members)), share=round(len(members) / len(cur), 4),
            examples=tuple(cur[i].message for i in nearest), new_terms=new_terms(messages, ref_messages),
        ))
    clusters.sort(key=lambda c: -c.size)
    return share, tuple(clusters)


def compute(reference: Sequence[Any], current: Sequence[Any], cfg: DriftSettings = DriftSettings()) -> DriftSignals:
    """The signals and their alarms. A window with fewer than ``min_samples`` turns raises no alarm."""
    notes = []
    sufficient = len(reference) >= cfg.min_samples and len(current) >= cfg.min_samples
    if not sufficient:
        notes.append(f"insufficient samples: {len(reference)} reference, {len(current)} current (< {cfg.min_samples})")
    for name, window in (("reference", reference), ("current", current)):
        outage = outage_share(window)
        if outage > 0.05:  # the classifier was down for these turns: the rule path's intents dominate the shares
            notes.append(f"classifier unavailable for {outage:.0%} of the {name} window: an outage skews the signals")
    ref_shares, cur_shares = intent_shares(reference), intent_shares(current)
    shift = {i: round((cur_shares[i] - ref_shares[i]) * 100, 2) for i in INTENT_LABELS}
    top = max(shift, key=lambda i: abs(shift[i]))
    conf_ref, conf_cur = mean_confidence(reference), mean_confidence(current)
    kl, kl_p, kl_dims, model = None, None, (), None
    x_ref, x_cur = sketches(reference), sketches(current)
    if len(x_ref) >= cfg.clusters * 10 and len(x_cur) >= cfg.clusters * 10 and x_ref.shape[1] == x_cur.shape[1]:
        model = _kmeans(x_ref, cfg.clusters)  # one fit of the reference serves the KL and the outliers
        kl, kl_p = occupancy_kl(x_ref, x_cur, model=model)
        _, kl_dims = kl_divergence(x_ref, x_cur, cfg.kl_bins)  # per-dimension marginals: the report's diagnostic
    else:
        notes.append("embedding drift not computed: too few sketches")
    outliers, patterns = pattern_outliers(reference, current, cfg, model)
    vocabulary_share, vocabulary = new_vocabulary(reference, current) if current else (0.0, None)
    if vocabulary is not None and vocabulary_share > cfg.new_term_share:
        patterns = (vocabulary, *patterns)
    # a classifier outage in either window leaves the rule path's intents (and no confidences) behind: the intent
    # and confidence signals would report the outage as drift, so they hold (Triton's own alerts cover outages)
    trusted = sufficient and max(outage_share(reference), outage_share(current)) <= cfg.max_outage_share
    if sufficient and not trusted:
        notes.append(f"intent-share and confidence alarms held: classifier outages above {cfg.max_outage_share:.0%}")
    alarms = {
        "intent_share": trusted and abs(shift[top]) > cfg.intent_share_points,
        "confidence": trusted and conf_cur is not None and conf_cur < cfg.min_confidence,
        "embedding": sufficient and kl is not None and kl > cfg.kl_threshold and kl_p is not None and kl_p < cfg.kl_alpha,
        "new_patterns": sufficient and (vocabulary_share > cfg.new_term_share
                                        or (outliers is not None and outliers > cfg.outlier_share)),
    }
    return DriftSignals(
        n_reference=len(reference), n_current=len(current),
        intent_share_reference=ref_shares, intent_share_current=cur_shares, intent_shift_points=shift,
        max_shift_points=shift[top], max_shift_intent=top,
        confidence_reference=conf_ref, confidence_current=conf_cur,
        embedding_kl=kl, embedding_p=kl_p, kl_per_dim=kl_dims, outlier_share=outliers, new_term_share=round(vocabulary_share, 4),
        new_patterns=patterns,
        alarms=alarms, sufficient=sufficient, notes=tuple(notes),
    )
