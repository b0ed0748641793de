"""A small learned jailbreak scorer beside the injection patterns (issue 23 item 4).

Logistic regression over binary word uni- and bigrams of a message view (lower-cased, letters only, scaled by
1/sqrt(max(n-grams in its vocabulary, MIN_NORM))), trained by ``python -m benchmarks.attacks.frozen --build`` on
the *training* split of the injection replay only (``tests/fixtures/attacks/injection_split.json``) -- a cached
set-up step (scripts/setup.sh) writing the weights, the bias, the decision threshold and the training record to
``.build/guardrails/injection_model.json`` (``guardrails.injection_model``; the image ships it at
``/opt/mangaassist/guardrails``). Weights are built, never committed.
Scoring is plain Python (a dict lookup per n-gram): a 2,000-character message is about 700 lookups.

Its job is what the patterns miss: role-play jailbreaks (personas, "stay in character", two-answer formats)
that carry no fixed override phrase. The threshold sits above every benign training message's
out-of-fold score, with a margin (see the training record).
"""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from pathlib import Path

#: Where the set-up step writes the model (the default of ``guardrails.injection_model``, from the repository root).
MODEL_FILE = Path(__file__).resolve().parents[2] / ".build" / "guardrails" / "injection_model.json"
#: Tokens read per view: a longer message is scored on its first MAX_TOKENS words (jailbreaks set up the persona
#: at the start) -- bounded work whatever the input.
MAX_TOKENS = 600
_TOKEN_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")
#: A view is normalised by sqrt(max(n-grams in the vocabulary, MIN_NORM)): a short message cannot reach the
#: threshold on two or three jailbreak-ish n-grams ("you are ... assistant"); short attacks are the patterns' job.
MIN_NORM = 64
#: Views of fewer words are not scored at all (probability 0): the model was learned from long role-play
#: templates against short store questions, so on a short message it mostly sees which words customers use.
MIN_WORDS = 25


def ngrams(view: str) -> set[str]:
    tokens = _TOKEN_RE.findall(view.lower())[:MAX_TOKENS]
    feats = set(tokens)
    feats.update(f"{a} {b}" for a, b in zip(tokens, tokens[1:]))
    return feats


class JailbreakModel:
    def __init__(self, weights: dict[str, float], bias: float, threshold: float) -> None:
        self.weights, self.bias, self.threshold = weights, bias, threshold

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> "JailbreakModel":
        data = json.loads(path.read_text())
        return cls(data["weights"], data["bias"], data["threshold"])

    def logit(self, view: str) -> float:
        w = self.weights
        present = [w[f] for f in ngrams(view) if f in w]
        if not present:
            return self.bias
        return self.bias + sum(present) / math.sqrt(max(len(present), MIN_NORM))

    def probability(self, view: str) -> float:
        if len(_TOKEN_RE.findall(view.lower(), 0, 4000)) < MIN_WORDS:
            return 0.0
        z = self.logit(view)
        return 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0


@lru_cache(maxsize=4)
def load_model(path: str | Path = MODEL_FILE) -> JailbreakModel:
    """The model at ``path`` (read once per path). A missing file is an error: the injection check must not
    quietly lose its learned half (build it: ``bash scripts/setup.sh``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no jailbreak model at {path}: build it with `python -m benchmarks.attacks.frozen --build` "
                                "(part of scripts/setup.sh), or set guardrails.injection_model to \"\" for patterns only")
    return JailbreakModel.load(path)


def default_model() -> JailbreakModel:
    return load_model(MODEL_FILE)
