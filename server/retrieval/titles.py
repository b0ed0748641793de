"""Open-world title judgement: is the title the customer typed one of the store's series, or something else?

Phrase, fuzzy and dense lookups all find a *candidate* series for almost any message -- retrieval always returns
something, and a made-up "Vinland Rhapsody" shares a word with Vinland Saga. Whether the candidate is what the
customer asked for is a separate decision, made here from two measured quantities:

- **name coverage**: the share of the candidate's name words (or of one alias's) that the message contains
  (exactly, or within a typo: one edit for a word of up to 7 letters, two for a longer one);
- **span coverage**: the share of the customer's *title span* -- the run of title-like words around the matched
  ones ("how much is **Vinland Rhapsody** vol 3") -- that the candidate's name explains.

Four outcomes (:class:`TitleVerdict`, thresholds in :class:`Thresholds`): ``match`` (the series' whole name typed;
a whole alias that explains every title word of the span; or a short form of ``short_words`` words and
``short_name`` of the name with nothing unexplained), ``ask`` (part of one name and nothing else), ``unknown``
(the span holds title words the candidate does not explain: "we don't carry <span>", the candidate offered only
as a suggestion when its name coverage reaches ``suggest_name``), or ``none`` (no title word matched). Several
series matched by the same words (:func:`tied`) are asked about by the resolver.

The thresholds were set on the development half of the frozen open-world sets
(``tests/fixtures/openworld/dev_*``) and the classifier's training messages that name carried titles, and are
reported on the held-out half (``python -m model_repository.lifecycle.evaluation.openworld``); see docs/answers-and-evaluation.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

from rapidfuzz.distance import OSA

#: Words that are never part of a title span: function words, the asks and store words around a title, people a
#: book is for, times. A span stops at them; they are not evidence of another title.
NON_TITLE = frozenset(
    """a an and or but the of to in on at for from with by about as into than then so if
    is are was were be been being am do does did done have has had having will would can could should shall may
    might must get got gets getting gonna wanna gotta
    i me my mine you your yours u ur we us our they them their he him his she her it its this that these those
    there here what which who whom whose how when where why any anything some something all each every
    hi hello hey yo pls plz please thanks thank ty ok okay yes yeah no not nope hmm um oh lol rn asap btw
    buy buying bought order ordering ordered purchase sell sells selling sold carry carries carrying stock stocked
    stocking available availability find finding looking look search searching want wants wanted need needs
    needed like likes love loves loved read reading reader recommend rec recs suggest check tell know knows
    price prices priced cost costs costing much many how expensive cheap cheaper deal deals discount sale
    copy copies vol vols volume volumes book books issue issues edition editions print paperback hardcover
    digital ebook kindle omnibus box set sets deluxe collection manga manhwa comic comics series title titles
    english japanese spanish french german italian portuguese version translated
    left still new next last first latest whole entire complete full another other same
    shop store site website online here today tomorrow now currently yet soon ever already again
    son daughter kid kids child children brother sister friend friends wife husband mom dad mother father
    nephew niece gift present birthday christmas holiday
    ari masu ka wa ga desu arimasu kudasai
    one two three
    return returned returning exchange exchanged refund refunded replace replacement damaged scratched bent torn
    missing misprinted soaked wrong arrived came come comes coming out release released releases releasing
    preorder pre order ordered caught up finished finish finishing reread rereading started starting devoured
    binged watched anime cover covers page pages chapter chapters color colour dimensions size pages furigana
    translation translated author artist wrote writes drew draws published publisher worth peak mid good best
    fit shelf bookshelf hiatus ongoing completed ended final total cheaper sale
    go anytime right ago weeks week days months anything back hear heard publish publishes similar vibe vibes
    shonen seinen shojo shoujo josei isekai romance horror comedy fantasy mystery action drama sports genre
    liked enjoyed hated loving reading readin rn fr ngl tbh lol lmao pls
    mitai na yatsu aru yomitai desu ni wo mo kedo kore sore nani ikura zaiko hoshii kaitai onegai sumimasen
    arigatou gozaimasu konnichiwa dai kan suki daisuki nan
    """.split()
)
#: store words customers misspell ("volmue", "voluumes"): a word within one edit of one of these is not a title word
_STORE_WORDS = ("volume", "volumes", "edition", "paperback", "hardcover", "omnibus", "chapter", "chapters",
                "available", "release", "stock", "price", "cheaper", "digital", "translation")
#: Joining words inside a title ("Nausicaa *of the* Valley", "Spy *x* Family", "Kimetsu *no* Yaiba").
CONNECTIVES = frozenset("of the no a an to in x on wa ga de".split())
#: a word in Latin script (accents kept for folding) or a run of Japanese script -- "Atelierの11巻" is two tokens
_TOKEN = re.compile(r"[0-9A-Za-z\u00C0-\u024F]+(?:['\u2019][0-9A-Za-z\u00C0-\u024F]+)*|[\u3040-\u30FF\u4E00-\u9FFF]+")


def fold(word: str) -> str:
    """ASCII, lower case, no apostrophes: the form names and messages are compared in."""
    return re.sub(r"['`\u2019]", "", unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode("ascii").lower())


def name_words(name: str) -> list[str]:
    return [w for w in (fold(t) for t in _TOKEN.findall(name)) if w and w not in CONNECTIVES]


@dataclass(frozen=True)
class TitleMatch:
    """How well one candidate series explains the title in a message."""

    series: str
    name_coverage: float  # share of the candidate name's words the message contains
    span_coverage: float  # share of the customer's title words the candidate's name explains
    span: str  # the customer's title span, as typed ("" when no word matched)
    matched: int = 0  # name words found in the message
    alias: bool = False  # measured against an alias, not the series' own name
    edited: bool = False  # a one-word name found only as a near spelling ("hana" for Nana's "nana")

    @property
    def score(self) -> float:
        return self.name_coverage * self.span_coverage


@dataclass(frozen=True)
class Thresholds:
    #: the series' whole name typed: ours, whatever stands around it ("Kinokuniya lists Death Note vol 9 ...")
    accept_name: float = 1.0
    #: a whole alias typed: ours only when it explains this share of the customer's title words ("vinland" is an
    #: alias of Vinland Saga; "Vinland Rhapsody" is not Vinland Saga, nor "Kamuy of the Paper Moon" Paper Moon
    #: Orchestra)
    alias_span: float = 1.0
    #: a short form ("unit delta" for Steel Dawn Unit Delta): at least this share of the name, this many of its
    #: words, and every title-like word around them explained
    short_name: float = 0.5
    short_words: int = 2
    short_span: float = 1.0
    suggest_name: float = 0.25


@dataclass(frozen=True)
class TitleVerdict:
    outcome: str  # "match" | "ask" | "unknown" | "none"
    best: TitleMatch | None = None

    @property
    def span(self) -> str:
        return self.best.span if self.best is not None else ""


def _word_match(token: str, words: Sequence[str]) -> bool:
    """Exactly, or within a typo: one edit (a transposition counts as one) for a word of 3-7 letters ("deth",
    "otah", "srhine"), two for a longer one ("reincarnatd")."""
    if token in words:
        return True
    if len(token) < 3:
        return False
    return any(len(w) >= 4 and OSA.distance(token, w, score_cutoff=_edits(w)) <= _edits(w) for w in words)


def _edits(word: str) -> int:
    return 2 if len(word) >= 8 else 1


def _title_like(word: str) -> bool:
    if not word or word in NON_TITLE or word.isdigit() or re.fullmatch(r"v\d+", word):
        return False
    return not (len(word) >= 5 and any(OSA.distance(word, w, score_cutoff=1) <= 1 for w in _STORE_WORDS))


def measure(text: str, series: str, names: Iterable[str]) -> TitleMatch:
    """The best coverage of ``text`` by ``series`` under any of its ``names`` (its name and aliases)."""
    tokens = [(m.group(0), fold(m.group(0))) for m in _TOKEN.finditer(text)]
    folded = [f for _, f in tokens]
    best = TitleMatch(series, 0.0, 0.0, "")
    for name in names:
        words = name_words(name)
        if not words:
            continue
        # a title-like word of the message must match before its function words may ("one" of One Piece counts
        # next to "piece"; "my sister" alone is no mention of My Little Sister Is a Robot)
        hits = [i for i, f in enumerate(folded) if _title_like(f) and _word_match(f, words)]
        if not hits:
            continue
        hits += [i for i, f in enumerate(folded) if f and not _title_like(f) and f not in CONNECTIVES
                 and (f in words if len(f) < 4 else _word_match(f, words))]
        covered = {w for w in words if any(_word_match(folded[i], [w]) or folded[i] == w for i in hits)}
        exact = {w for w in words if any(folded[i] == w for i in hits)}
        lo, hi = min(hits), max(hits)
        lo, hi = _extend([t for t, _ in tokens], folded, lo, hi)
        # the customer's title words: every title-like word of the span, and the name's own words (its "one")
        span_words = [f for f in folded[lo : hi + 1] if f and f not in CONNECTIVES
                      and (_title_like(f) or f in words or _word_match(f, words))]
        explained = [f for f in span_words if _word_match(f, words) or f in words]
        candidate = TitleMatch(
            series,
            name_coverage=len(covered) / len(words),
            span_coverage=len(explained) / len(span_words) if span_words else 0.0,
            span=" ".join(t for t, _ in tokens[lo : hi + 1]),
            matched=len(covered),
            alias=fold(name) != fold(series),
            edited=len(words) == 1 and bool(covered - exact),
        )
        if (candidate.score, candidate.name_coverage) > (best.score, best.name_coverage):
            best = candidate
    return best


def _extend(tokens: Sequence[str], folded: Sequence[str], lo: int, hi: int) -> tuple[int, int]:
    """Widen [lo, hi] over the title-like words around it. To the right any title-like word extends the title
    ("Vinland *Rhapsody*"); to the left only a word joined to it ("*Kamuy* of the Paper Moon") or, in a message
    written in mixed case, a capitalised one ("*Tsubasa* Lock"): the words before a title are mostly the ask
    ("read Next Door", "liked frieren")."""
    mixed = any(t[:1].isupper() for t in tokens) and any(t[:1].islower() for t in tokens)

    def word(i: int) -> bool:
        return 0 <= i < len(folded) and _title_like(folded[i]) and folded[i] not in CONNECTIVES

    def joined(i: int, step: int) -> int:
        """The title word reached from ``i`` over at most two joining words, or -1."""
        for skip in range(3):
            j = i + step * skip
            if word(j):
                if step < 0 and skip == 0 and not (mixed and tokens[j][:1].isupper()):
                    return -1  # a bare word before the title: the ask, not the title
                return j
            if not (0 <= j < len(folded) and folded[j] in CONNECTIVES):
                return -1
        return -1

    while (j := joined(lo - 1, -1)) >= 0:
        lo = j
    while (j := joined(hi + 1, 1)) >= 0:
        hi = j
    return lo, hi


def judge(match: TitleMatch, thresholds: Thresholds = Thresholds()) -> TitleVerdict:
    """``match``: this series; ``ask``: part of its name and nothing else title-like ("vinland", "is mermaid
    in stock") -- ask whether it is the one meant, state no price; ``unknown``: title words it does not explain
    ("Vinland Rhapsody"); ``none``: no word of it."""
    if not match.span:
        return TitleVerdict("none", match)
    trusted = not (match.alias or match.edited)  # the series' own name, spelled as ours
    if match.name_coverage >= thresholds.accept_name and (trusted or match.span_coverage >= thresholds.alias_span):
        return TitleVerdict("match", match)
    if match.span_coverage >= thresholds.short_span:
        if match.name_coverage >= thresholds.short_name and match.matched >= thresholds.short_words:
            return TitleVerdict("match", match)
        if match.name_coverage >= thresholds.suggest_name:
            return TitleVerdict("ask", match)
    return TitleVerdict("unknown", match)


def tied(verdicts: Sequence[TitleVerdict], best: TitleVerdict) -> list[str]:
    """The series matched as well as ``best`` by the same words of the message ("last train": every Last Train
    to ...): more than one means the customer must say which."""
    key = (best.best.name_coverage, best.best.span_coverage, best.best.span)
    return [v.best.series for v in verdicts
            if v.outcome == "match" and (v.best.name_coverage, v.best.span_coverage, v.best.span) == key]


def best_of(verdicts: Iterable[TitleVerdict]) -> TitleVerdict | None:
    """The verdict to act on among several candidates': a match over an ask over an unknown, then the larger share
    of the name typed, then the larger share of the customer's words explained."""
    rank = {"match": 3, "ask": 2, "unknown": 1, "none": 0}
    scored = [v for v in verdicts if v.best is not None]
    if not scored:
        return None
    return max(scored, key=lambda v: (rank[v.outcome], v.best.name_coverage, v.best.span_coverage))
