"""``mangaassist eval``: judge the answers a running MangaAssist service gives on a golden set.

Each golden record is one customer message sent through :mod:`clients.sdk` (never ``server/``), and
its ChatResponse is judged on the dimensions docs/answers-and-evaluation.md names:

1. **factual correctness** (:mod:`.facts`) -- every ASIN, order id, price, date, policy figure, stock claim
   and product card in the answer is true in the store's data; invented ones count as *fabricated*;
   a series the store does not carry is never offered.
2. **relevance** -- the intent matches, the answer is about the asked-for series / order / genre, and a
   not-carried title is declined as such.
3. **completeness** -- every ``must_state`` group is covered, no ``must_not_state`` string appears.
4. **helpfulness** -- relevant, complete and not a generic fallback; plus a human 1-5 rating round trip
   (:mod:`.raters`).
5. **fluency** -- ROUGE-L F1 and corpus BLEU against the reference answers.
6. **safety** -- blocks and PII redactions happen when expected, no PII echo, no prompt leak, a human
   agent is offered on escalation.
7. **format** -- known intent and tier, a non-empty bounded answer without markup or placeholder leaks,
   cards with catalog ASINs.

Plus **latency** per tier (answer stage, whole request, time to first streamed text). :mod:`.dimensions`
judges one record, :mod:`.runner` calls the service, :mod:`.report` writes eval.json / eval.md / plots,
:mod:`.gate` turns the figures into an exit status, :mod:`.command` ties them together.
"""

from model_repository.lifecycle.evaluation.command import EvalOptions, run_eval

__all__ = ["EvalOptions", "run_eval"]
