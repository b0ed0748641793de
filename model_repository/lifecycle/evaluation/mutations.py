"""Judging the judge: a mutation corpus built from the golden references, and the fact checker's recall on it.

For each golden record, :func:`mutate` writes answers that differ from the record's reference answer in one
fact, the way models get facts wrong (:data:`KINDS`):

``neighbour_price``       a product's price replaced by the price of its neighbouring volume (same edition)
``other_edition_stock``   a product's stock statement replaced by the one true of another edition of that volume
``other_order_eta``       an order's delivery date replaced by (or said as) another order's
``other_order_carrier``   an order's carrier replaced by another carrier
``other_order_status``    an order's status sentence replaced by another status's
``other_section_figure``  a policy figure replaced by a figure of the same kind from another policy section
``negated``               a stock, order or policy statement negated ("not in stock", "no longer", "can be returned")
``invented_author``       the author / publisher named replaced by a name the store does not know
``wrong_title``           the product (or series) named replaced by another one, with the same facts where one exists

Replacement figures are written in the forms people use ("12.99 USD", "12 dollars 99", "March 5, 2025",
"5 Mar 2025", "3/5/2025"). Every choice comes from ``random.Random(f"{seed}:{record id}:{kind}")``: the corpus
is a pure function of the data, the golden set and the seed.

:func:`evaluate` runs :func:`~model_repository.lifecycle.evaluation.facts.check_answer` on every mutant (with the record's
:func:`~model_repository.lifecycle.evaluation.facts.expected_entity`) and on two controls that must pass: the unmutated references
and the references with their prices and dates rewritten into other formats. Targets (issue 22): >= 98% of
mutants flagged, every kind at or above its floor in :data:`FLOORS`, 0 controls flagged.

``python -m model_repository.lifecycle.evaluation.mutations [--data .build/data] [--golden .build/golden/golden.jsonl] [--out DIR]``
prints the report (one recall line per kind) and writes ``mutations.json`` / ``mutations.md`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from model_repository.lifecycle.evaluation import facts as F
from model_repository.lifecycle.evaluation.facts import StoreFacts, check_answer, expected_entity

KINDS = (
    "neighbour_price", "other_edition_stock", "other_order_eta", "other_order_carrier", "other_order_status",
    "other_section_figure", "negated", "invented_author", "wrong_title",
)
#: The recall each kind must keep (the unit test fails below it); overall the target is OVERALL_FLOOR.
FLOORS = dict.fromkeys(KINDS, 0.95)
OVERALL_FLOOR = 0.98
DEFAULT_SEED = 1234
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
CARRIERS = ("USPS", "UPS", "FedEx")
_GIVEN = ("Haruto", "Sora", "Mei", "Riku", "Yuna", "Kaito", "Hana", "Ren", "Aoi", "Kenta", "Mio", "Shun")
_FAMILY = ("Takemura", "Fujioka", "Kurobane", "Shiraki", "Aizawa", "Hoshizora", "Tsukada", "Minegishi", "Oborozuki", "Kazamatsu")
_IMPRINTS = ("Crescent Moon Press", "Paper Lantern Comics", "Bluefin Books", "Red Maple Manga", "Starling House")
STATUS_SENTENCE = {
    "processing": "Order {oid} is being prepared in our warehouse and hasn't shipped yet.",
    "shipped": "Order {oid} has shipped{with}.",
    "out_for_delivery": "Order {oid} is out for delivery{with}.",
    "delivered": "Order {oid} was delivered{by}.",
    "cancelled": "Order {oid} was cancelled, so it won't ship.",
}
#: statuses an order may be said to have without a false statement ("shipped" is true of a delivered order)
_COMPATIBLE = {
    "processing": {"processing"}, "shipped": {"shipped"}, "out_for_delivery": {"out_for_delivery", "shipped"},
    "delivered": {"delivered", "shipped"}, "cancelled": {"cancelled"},
}
#: (pattern, replacement) that flip a statement's polarity, tried in order on the reference
_NEGATIONS: tuple[tuple[str, str], ...] = (
    (r"\bis in stock\b", "is not in stock|is no longer in stock|isn't in stock|is out of stock"),
    (r"\bit's in stock\b", "it's no longer in stock|it's not in stock|it's out of stock"),
    (r"\band in stock\b", "and not in stock|but no longer in stock"),
    (r"\bis out of stock\b", "is in stock|is not out of stock"),
    (r"\bhasn't shipped yet\b", "has shipped"),
    (r"\bhas shipped\b", "hasn't shipped|has not shipped"),
    (r"\bwas delivered\b", "was not delivered|hasn't been delivered"),
    (r"\bwas cancelled\b", "was not cancelled"),
    (r"\bis out for delivery\b", "is not out for delivery yet"),
    (r"\bwe don't carry\b", "we carry|we do carry"),
    (r"\bcannot\b", "can"),
    (r"\bcan't\b", "can"),
    (r"\bdo not\b", "do"),
    (r"\bdon't\b", "do"),
    (r"\baren't\b", "are"),
    (r"\bhaven't\b", "have"),
    (r"\bnever\b", "always|often"),
    (r"\bnot guaranteed\b", "guaranteed"),
    (r"\bno fee\b", "a fee"),
    (r"\bno minimum\b", "a minimum"),
    (r"\bYou can\b", "You cannot"),
    (r"\bWe (ship|exchange|match|retry)\b", r"We do not \1"),
    (r"\b(?:get|gets) (free|a full|early|expedited|10%)", r"don't get \1"),
    (r"\b(is|are) (free|charged|added|issued|refunded|given|included)\b", r"\1 not \2"),
    (r"\b(?:accept|match)\b", "do not accept"),
)
#: references whose statements are no facts of the store (a refusal, a hand-off, a greeting): not negated
_NOT_FACTS = re.compile(r"I can only share order details|I'm passing you|Sorry, I can't help|Could you share|I couldn't find", re.I)


@dataclass(frozen=True)
class Mutant:
    record_id: str
    kind: str  # one of KINDS, or "reference" / "reformatted" for the controls
    answer: str
    change: str  # what was changed, "<old> -> <new>"

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class _Reply:
    answer: str
    cards: tuple = ()


# ----------------------------------------------------------------------------------------- formats
def price_forms(cents: int) -> list[str]:
    """How people write a USD amount."""
    d, c = divmod(cents, 100)
    amount = f"{d}.{c:02d}" if c else f"{d}"
    forms = [f"${amount}", f"{amount} USD", f"US${amount}", f"{amount} dollars"]
    if c:
        forms.append(f"{d} dollars {c:02d}")
    return forms


def date_forms(iso: str) -> list[str]:
    """How people write a date (US month/day order for the numeric one)."""
    y, m, d = (int(x) for x in iso.split("-"))
    month = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
             "November", "December")[m - 1]
    return [iso, f"{month} {d}, {y}", f"{d} {month[:3]} {y}", f"{m}/{d}/{y}"]


# ----------------------------------------------------------------------------------------- the corpus
def mutate(facts: StoreFacts, records: Iterable[Mapping[str, Any]], seed: int = DEFAULT_SEED) -> list[Mutant]:
    """Every applicable mutation of every record's reference (at most one per kind and record)."""
    out: list[Mutant] = []
    ctx = _Corpus(facts)
    for rec in records:
        ref = str(rec.get("reference") or "")
        if not ref or _CJK.search(ref):
            continue  # the Japanese references state no checkable facts
        for kind in KINDS:
            rng = random.Random(f"{seed}:{rec['id']}:{kind}")
            made = getattr(ctx, kind)(rec, ref, rng)
            if made is not None and made[0] != ref:
                out.append(Mutant(str(rec["id"]), kind, made[0], made[1]))
    return out


def controls(facts: StoreFacts, records: Iterable[Mapping[str, Any]], seed: int = DEFAULT_SEED) -> list[Mutant]:
    """The unmutated references, and each with its prices and dates rewritten into other formats (both must pass)."""
    out = []
    for rec in records:
        ref = str(rec.get("reference") or "")
        if not ref:
            continue
        out.append(Mutant(str(rec["id"]), "reference", ref, ""))
        rng = random.Random(f"{seed}:{rec['id']}:reformat")
        text = F.PRICE.sub(lambda m: rng.choice(price_forms(_cents(m))), ref)
        text = F.DATE_ISO.sub(lambda m: rng.choice(date_forms(m.group(0))), text)
        if text != ref:
            out.append(Mutant(str(rec["id"]), "reformatted", text, "prices / dates in other formats"))
    return out


def _cents(m: re.Match) -> int:
    if m.group("d") is not None:
        return int(m.group("d")) * 100 + int(m.group("c"))
    return F._money(m.group("a1") or m.group("a2"))


class _Corpus:
    """One method per kind: (mutated answer, change) or None where the kind does not apply to the record."""

    def __init__(self, facts: StoreFacts) -> None:
        self.facts = facts
        P = facts.products
        self.by_edition: dict[tuple[str, str, str], dict[int, str]] = {}
        for a, p in P.items():
            if p.get("volume") is not None:
                self.by_edition.setdefault((p["series"], p["format"], p["language"]), {})[p["volume"]] = a
        self.by_volume: dict[tuple[str, int], list[str]] = {}
        for a, p in P.items():
            if p.get("volume") is not None:
                self.by_volume.setdefault((p["series"], p["volume"]), []).append(a)
        self.titles = sorted(facts.by_title)
        self.orders = sorted(facts.orders)
        self.section_shown: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for p in facts.policies:
            text = str(p.get("text", ""))
            shown = list(F._figures(text)) + [(("money", c), m.group(0)) for m, c in F._price_claims(text)]
            self.section_shown.setdefault(str(p.get("policy_id")), []).extend(shown)
        self.carried_series = sorted(s for s in facts.by_series if facts.is_carried(s))

    # helpers ---------------------------------------------------------------------------------------------
    def products_named(self, ref: str) -> list[tuple[int, int, str]]:
        """(start, end, asin) for each product named by its exact title (the references name titles)."""
        out = []
        for start, end, asins in F.named_products(self.facts, ref):
            if len(asins) == 1:
                out.append((start, end, asins[0]))
        return out

    @staticmethod
    def _sub(ref: str, start: int, end: int, new: str) -> str:
        return ref[:start] + new + ref[end:]

    def _order(self, rec: Mapping[str, Any], ref: str) -> dict[str, Any] | None:
        oid = (rec.get("entity") or {}).get("order_id")
        if not oid or str(oid) not in ref:
            return None
        return self.facts.orders.get(str(oid).upper())

    # kinds -------------------------------------------------------------------------------------------------
    def neighbour_price(self, rec, ref, rng):
        P = self.facts.products
        for start, end, asin in self.products_named(ref):
            p = P[asin]
            price_m = next((m for m, c in F._price_claims(ref[end : end + 80]) if c == F._money(p["price"])), None)
            if price_m is None or p.get("volume") is None:
                continue
            vols = self.by_edition.get((p["series"], p["format"], p["language"]), {})
            order = sorted(vols, key=lambda v: (abs(v - p["volume"]), v))
            other = next((vols[v] for v in order if F._money(P[vols[v]]["price"]) != F._money(p["price"])), None)
            if other is None:
                continue
            new = rng.choice(price_forms(F._money(P[other]["price"])))
            s, e = end + price_m.start(), end + price_m.end()
            return self._sub(ref, s, e, new), f"{ref[s:e]} -> {new} (price of {P[other]['title']})"
        return None

    def other_edition_stock(self, rec, ref, rng):
        P = self.facts.products
        for start, end, asin in self.products_named(ref):
            p = P[asin]
            m = re.compile(r"\b(?:is (?:available as a digital edition and )?in stock|is out of stock|it's in stock)").search(ref, end)
            if m is None or m.start() - end > 40 or p.get("volume") is None:
                continue
            has = p["stock"] > 0
            others = [a for a in self.by_volume.get((p["series"], p["volume"]), []) if a != asin and (P[a]["stock"] > 0) != has]
            if not others:
                continue
            other = rng.choice(sorted(others))
            new = ("it's out of stock" if m.group(0).startswith("it's") else "is out of stock") if has else "is in stock"
            return self._sub(ref, m.start(), m.end(), new), f"{m.group(0)} -> {new} (stock of {P[other]['title']})"
        return None

    def other_order_eta(self, rec, ref, rng):
        o = self._order(rec, ref)
        if o is None:
            return None
        others = sorted({str(x["eta"]) for x in self.facts.orders.values()} - {str(o["eta"]), str(o["placed_at"])})
        if not others:
            return None
        new = rng.choice(date_forms(rng.choice(others)))
        if o["eta"] in ref:
            i = ref.index(o["eta"])
            return self._sub(ref, i, i + len(o["eta"]), new), f"{o['eta']} -> {new}"
        return ref + f" It's expected around {new}.", f"added: expected around {new} (delivery {o['eta']})"

    def other_order_carrier(self, rec, ref, rng):
        o = self._order(rec, ref)
        if o is None or not o.get("carrier") or o["carrier"] not in ref:
            return None
        new = rng.choice([c for c in CARRIERS if c != o["carrier"]])
        i = ref.index(o["carrier"])
        return self._sub(ref, i, i + len(o["carrier"]), new), f"{o['carrier']} -> {new}"

    def other_order_status(self, rec, ref, rng):
        o = self._order(rec, ref)
        if o is None:
            return None
        oid = o["order_id"]
        start, text, _ = next(u for u in F._units(ref) if oid in u[1])  # the sentence that names the order
        end = start + len(text)
        status = rng.choice(sorted(set(STATUS_SENTENCE) - _COMPATIBLE[o["status"]]))
        c = o.get("carrier")
        new = STATUS_SENTENCE[status].format(oid=oid, **{"with": f" with {c}" if c else "", "by": f" by {c}" if c else ""})
        return self._sub(ref, start, end, new).strip(), f"{o['status']} -> {status}"

    def other_section_figure(self, rec, ref, rng):
        pid = (rec.get("entity") or {}).get("policy_id")
        if not pid or pid not in self.section_shown:
            return None
        own = {k for k, _ in self.section_shown[pid]}
        own_loose = {F._loose(k) for k in own}
        spans = []
        for start, text, _ in F._units(ref):
            if F._mentions(self.facts, text, F._series_in(self.facts, ref)):
                continue  # a sentence about a product or an order: not the policy's
            for key, shown in F._figures(text):
                spans.append((start + text.index(shown), shown, key))
            for m, c in F._price_claims(text):
                spans.append((start + m.start(), m.group(0), ("money", c)))
        rng.shuffle(spans)
        for pos, shown, key in spans:
            cands = sorted({s for p2, figs in self.section_shown.items() if p2 != pid for k, s in figs
                            if k[0] == key[0] and k not in own and F._loose(k) not in own_loose})
            if not cands:
                continue
            new = rng.choice(cands)
            if key[0] == "money":
                new = rng.choice(price_forms(F._money(new.lstrip("$").replace(",", ""))))
            return self._sub(ref, pos, pos + len(shown), new), f"{shown} -> {new}"
        return None

    def negated(self, rec, ref, rng):
        if _NOT_FACTS.search(ref) or rec.get("intent") == "chitchat":
            return None  # small talk and refusals state no fact of the store
        hits = []
        for pattern, repl in _NEGATIONS:
            for m in re.finditer(pattern, ref):
                hits.append((m, repl))
            if hits:
                break
        if not hits:
            return None
        m, repl = rng.choice(hits)
        new = m.expand(rng.choice(repl.split("|")))
        if new[:1].islower() and m.group(0)[:1].isupper():
            new = new[0].upper() + new[1:]
        return self._sub(ref, m.start(), m.end(), new), f"{m.group(0)} -> {new}"

    def invented_author(self, rec, ref, rng):
        m = re.search(r"\b(?:is by|series by|published by) (.+?)(?:[.;]\s|[.;]?$)", ref)
        if m is None:
            return None
        old = m.group(1)
        if "published" in m.group(0):
            new = rng.choice([n for n in _IMPRINTS if n not in self.facts.publishers])
        else:
            names = [f"{g} {f}" for g in _GIVEN for f in _FAMILY if f"{g} {f}" not in self.facts.authors]
            new = rng.choice(names)
        return self._sub(ref, m.start(1), m.end(1), new), f"{old} -> {new}"

    def wrong_title(self, rec, ref, rng):
        P = self.facts.products
        named = self.products_named(ref)
        if named:
            start, end, asin = named[0]
            p = P[asin]
            pool = [a for a in P if a != asin and P[a]["format"] == p["format"] and P[a]["language"] == p["language"]
                    and P[a]["series"] != p["series"]]
            same = [a for a in pool if F._money(P[a]["price"]) == F._money(p["price"]) and (P[a]["stock"] > 0) == (p["stock"] > 0)
                    and P[a].get("volume") == p.get("volume")]
            if not pool:
                return None
            other = rng.choice(sorted(same or pool))
            return self._sub(ref, start, end, P[other]["title"]), f"{p['title']} -> {P[other]['title']}"
        series = str((rec.get("entity") or {}).get("series") or "")
        if not series or series.lower() not in self.facts.by_series or series not in ref:
            return None
        if not re.search(rf"{re.escape(series)} is by|volumes of {re.escape(series)}|edition of {re.escape(series)}", ref):
            return None  # named in passing ("Haikyu!! has a lot of fans"): no fact of it stated
        others = [s for s in self.carried_series if s != series.lower()]
        if not others:
            return None
        other = rng.choice(others)
        name = P[self.facts.by_series[other][0]]["series"]
        i = ref.index(series)
        return self._sub(ref, i, i + len(series), name), f"{series} -> {name}"


# ----------------------------------------------------------------------------------------- the report
def evaluate(facts: StoreFacts, records: Sequence[Mapping[str, Any]], seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Recall per mutation kind, overall, and the controls flagged; with the misses and false flags listed."""
    by_id = {str(r["id"]): r for r in records}
    expected = {i: expected_entity(facts, r.get("entity"), str(r.get("reference") or "")) for i, r in by_id.items()}

    def flagged(m: Mutant) -> list[F.Violation]:
        rec = by_id[m.record_id]
        return check_answer(facts, str(rec.get("message", "")), _Reply(m.answer), expected[m.record_id]).violations

    mutants = mutate(facts, records, seed)
    kinds: dict[str, dict[str, Any]] = {k: {"n": 0, "caught": 0, "misses": []} for k in KINDS}
    caught_by: Counter = Counter()
    for m in mutants:
        found = flagged(m)
        row = kinds[m.kind]
        row["n"] += 1
        if found:
            row["caught"] += 1
            caught_by.update(f"{m.kind}:{v.kind}" for v in {v.kind: v for v in found}.values())
        else:
            row["misses"].append({"id": m.record_id, "change": m.change, "answer": m.answer})
    for k, row in kinds.items():
        row["recall"] = round(row["caught"] / row["n"], 4) if row["n"] else None
        row["floor"] = FLOORS[k]
    ctl = controls(facts, records, seed)
    false_flags = {"reference": [], "reformatted": []}
    n_ctl = Counter(c.kind for c in ctl)
    for c in ctl:
        found = flagged(c)
        if found:
            false_flags[c.kind].append({"id": c.record_id, "answer": c.answer, "violations": [v.to_dict() for v in found]})
    total = sum(r["n"] for r in kinds.values())
    caught = sum(r["caught"] for r in kinds.values())
    return {
        "seed": seed,
        "records": len(records),
        "mutants": total,
        "caught": caught,
        "recall": round(caught / total, 4) if total else None,
        "recall_floor": OVERALL_FLOOR,
        "kinds": kinds,
        "caught_as": dict(sorted(caught_by.items())),
        "controls": {k: {"n": n_ctl[k], "flagged": len(v), "examples": v[:20]} for k, v in false_flags.items()},
    }


def failures(result: Mapping[str, Any]) -> list[str]:
    """What misses the targets: a kind under its floor, the overall recall under its floor, a control flagged."""
    out = [f"{k}: recall {r['recall']:.1%} < floor {r['floor']:.0%}" for k, r in result["kinds"].items()
           if r["n"] and r["recall"] < r["floor"]]
    if result["recall"] is not None and result["recall"] < result["recall_floor"]:
        out.append(f"overall recall {result['recall']:.1%} < {result['recall_floor']:.0%}")
    out += [f"{k}: {c['flagged']} of {c['n']} flagged" for k, c in result["controls"].items() if c["flagged"]]
    return out


def summary(result: Mapping[str, Any]) -> dict[str, Any]:
    """The report without the mutants' texts: what ``mangaassist eval`` keeps in ``eval.json`` ("judge")."""
    return {
        "seed": result["seed"], "mutants": result["mutants"], "caught": result["caught"], "recall": result["recall"],
        "recall_floor": result["recall_floor"],
        "kinds": {k: {x: r[x] for x in ("n", "caught", "recall", "floor")} | {"misses": r["misses"][:5]}
                  for k, r in result["kinds"].items()},
        "controls": {k: {"n": c["n"], "flagged": c["flagged"], "examples": c["examples"][:5]} for k, c in result["controls"].items()},
        "below_target": failures(result),
    }


def render(result: Mapping[str, Any]) -> str:
    lines = [
        f"# Fact checker vs the mutation corpus (seed {result['seed']}, {result['records']} golden records)",
        "",
        "| mutation kind | mutants | flagged | recall | floor |",
        "|---|---|---|---|---|",
    ]
    for k, r in result["kinds"].items():
        recall = f"{r['recall']:.1%}" if r["recall"] is not None else "n/a"
        lines.append(f"| {k} | {r['n']} | {r['caught']} | {recall} | {r['floor']:.0%} |")
    lines.append(f"| **all** | {result['mutants']} | {result['caught']} | **{result['recall']:.1%}** | {result['recall_floor']:.0%} |")
    lines += ["", "| control (must pass) | answers | flagged |", "|---|---|---|"]
    for k, c in result["controls"].items():
        lines.append(f"| {k} | {c['n']} | {c['flagged']} |")
    misses = [(k, m) for k, r in result["kinds"].items() for m in r["misses"]]
    if misses:
        lines += ["", "Missed mutants:", ""]
        lines += [f"- `{k}` {m['id']}: {m['change']}" for k, m in misses[:40]]
    flags = [(k, f) for k, c in result["controls"].items() for f in c["examples"]]
    if flags:
        lines += ["", "Controls flagged:", ""]
        lines += [f"- `{k}` {f['id']}: {f['violations']}" for k, f in flags]
    return "\n".join(lines) + "\n"


def load_records(path: str | Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_repository.lifecycle.evaluation.mutations", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=".build/data", help="the store's data directory")
    parser.add_argument("--golden", default=".build/golden/golden.jsonl", help="golden set (jsonl)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", default=None, help="directory for mutations.json and mutations.md")
    args = parser.parse_args(argv)
    try:
        facts = StoreFacts.load(args.data)
        records = load_records(args.golden)
    except (OSError, ValueError, KeyError) as err:
        print(f"error: cannot load the store data or the golden set: {err}", file=sys.stderr)
        return 1
    result = evaluate(facts, records, args.seed)
    text = render(result)
    print(text, end="")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "mutations.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (out / "mutations.md").write_text(text, encoding="utf-8")
        print(f"wrote {out / 'mutations.json'}, {out / 'mutations.md'}")
    failed = failures(result)
    for line in failed:
        print(f"below target: {line}", file=sys.stderr)
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
