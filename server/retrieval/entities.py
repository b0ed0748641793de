"""Entity resolution: which series, volume and edition the customer means -- or that the store does not carry it.

Hybrid, most precise first:

1. **lexical** -- series names, titles and aliases as whole phrases (``CatalogStore.find_products``), Japanese
   script aliases as substrings (「葬送のフリーレン」), explicit volumes ("vol 3", "#3", "3巻");
2. **not carried** -- a well-known series the store does not sell (``series.jsonl`` ``carried: false``),
   named exactly: the answer declines it as such rather than offering another series under its name;
3. **fuzzy** -- typos ("vinlnad saga", "chainsw man"): word windows of the message against every name and
   alias with rapidfuzz (``fuzzy_cutoff``, 0-100); a fuzzy hit is reported as "did you mean";
4. **dense** -- the products behind the retrieved (adapter + reranker) chunks, but for a question about one
   title only when the chunk's series shares a distinctive word with the message: retrieval always
   returns *something*, and "is chainsaw man vol 3 in stock?" must not be answered with another series.

Edition and language words ("omnibus", "box set", "digital", "hardcover", "in Spanish", 「英語版」) pick among
a series' products; without them the English print edition is preferred.

Policy sections are found the same hybrid way (:meth:`EntityResolver.policies`): BM25 over the store's policy
sections (SQLite FTS5) fused with the dense-retrieved policy chunks by reciprocal rank. Dense retrieval alone
ranks thousands of product and review chunks above the one section that answers "how much is a prepaid return
label?"; word overlap alone misses paraphrase. Each ranks what the other misses.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Protocol, Sequence

from rapidfuzz import fuzz, process

from server.retrieval import asks
from server.retrieval.base import Chunk, Product, ScoredChunk
from server.retrieval.query import expand as expand_query
from server.retrieval.titles import Thresholds, TitleMatch, TitleVerdict, best_of, judge, measure, name_words, tied

FORMAT_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("box_set", re.compile(r"box\s*-?\s*sets?|boxset|complete set|ボックス|全巻セット|全巻", re.I)),
    ("omnibus", re.compile(r"omnibus|3-in-1|3 in 1|three-in-one|愛蔵版", re.I)),
    ("digital", re.compile(r"\bdigital\b|\be-?books?\b|\bkindle\b|\bebook\b|電子", re.I)),
    ("tankobon", re.compile(r"tankobon|paperback|softcover|physical|print(?:ed)? (?:copy|edition)|単行本|紙", re.I)),
)
LANGUAGES = ("English", "Japanese", "Spanish", "French", "German", "Italian", "Portuguese")
_LANGUAGE_WORDS: dict[str, re.Pattern[str]] = {
    "English": re.compile(r"\benglish\b|英語", re.I),
    "Japanese": re.compile(r"\bjapanese (?:edition|version|language|original)|\bin japanese\b|日本語版", re.I),
    "Spanish": re.compile(r"\bspanish\b|español|espanol|スペイン語", re.I),
    "French": re.compile(r"\bfrench\b|français|フランス語", re.I),
    "German": re.compile(r"\bgerman\b|deutsch|ドイツ語", re.I),
    "Italian": re.compile(r"\bitalian\b|italiano|イタリア語", re.I),
    "Portuguese": re.compile(r"\bportuguese\b|português|ポルトガル語", re.I),
}
_GENERIC_WORDS = frozenset(
    "a an and the of to in on for with by is are was be do does have has my me i you your it its this that what "
    "which who how when where vol volume book no part edition set box omnibus deluxe manga series one s x "
    "new last first next all my our love war end days man boys world".split()
)


class SeriesCatalog(Protocol):
    """What resolution needs from ``server.retrieval.store.CatalogStore``."""

    def find_products(self, text: str, limit: int) -> list[Product]: ...

    def get_product(self, asin: str) -> Product | None: ...

    def series_names(self) -> list: ...  # list[SeriesName]

    def series_products(self, series: str) -> list[Product]: ...

    def products_by_genre(self, genres: Sequence[str], limit: int, exclude_series: str | None = None) -> list[Product]: ...

    def script_mentions(self, text: str) -> list: ...  # list[SeriesName]

    def search_policies(self, text: str, limit: int) -> list: ...  # list[PolicySection], BM25 order

    def series_genres(self, series: str) -> tuple[str, ...]: ...


#: Customer words -> the words the policy sections use (the lexical half of policy search only).
_POLICY_SYNONYMS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), w) for p, w in (
        (r"\bswap|trade (?:it|in)|switch (?:it|to)|交換|koukan", "exchange"),
        (r"\bsend\b.{0,60}\bback\b|take (?:it )?back|returnable|\breturn(?:s|ing)?\b|返品|henpin", "return window"),
        (r"money back|reimburse|返金|henkin", "refund"),
        (r"refund.{0,40}(?:when|how long|hit|show up|post|arrive|back)|(?:when|how long).{0,40}refund", "refund timing issued"), (r"\bfaster|quicker|express|rush|overnight|速達", "expedited"),
        (r"\babroad|overseas|outside the us|\bintl\b|\b(?:canada|mexico|uk|united kingdom|england|germany|france|spain|italy|"
         r"europe|eu|japan|australia|new zealand|brazil|india|nihon|oosutoraria|doitsu|kanada|igirisu|furansu)\b|"
         r"海外|カナダ|ドイツ|イギリス|フランス|オーストラリア|日本まで|メキシコ", "international"),
        (r"\bmatch\b|competitor|cheaper (?:at|on|elsewhere)", "price match"),
        (r"\bsubscription|premium", "membership"),
        (r"\bcharged twice|double charged|charged two", "charged twice"), (r"\bpromo|voucher|discount code", "coupon"),
        (r"afterpay|klarna|installments?|pay (?:in|over) time|split (?:it|the (?:payment|cost))|分割", "split interest-free payments"),
        (r"crypto|bitcoin|仮想通貨|ビットコイン", "cryptocurrency accept"), (r"支払|払え|\bpay with\b", "payment accept"),
        (r"通貨|currency|dollars?\b|yen\b|円", "currency"),
        (r"\b(?:regular|normal|standard|futsuu)\b|普通", "standard"), (r"送料|souryou|charge for shipping|shipping (?:cost|fee)", "shipping fee"),
        (r"何日|nannichi|how long|shows? up|get here", "business days arrive"),
        (r"several volumes|\bbundle|buy .{0,30}together|at once|in one order|\bbulk\b|まとめ買い", "3 or more volumes same series save"),
        (r"pre-?order.{0,60}(?:cheaper|price (?:drop|went down))|(?:cheaper|price dropped).{0,60}pre-?order", "pre-order price guarantee lowest"),
        (r"予約|yoyaku", "pre-order"), (r"キャンセル|kyanseru", "cancel"), (r"手数料", "fee"),
        (r"何ヶ月前|how far ahead|how early|how soon can i pre-?order", "months before release"),
        (r"christmas|holiday|クリスマス", "holiday deadline"),
        (r"copies|部", "copies per customer"),
    )
) + ((asks.DAMAGE, "damaged defective wrong item replacement"),)
RRF_K = 60  # reciprocal-rank fusion constant (the usual 60: a rank-1 hit in one list outweighs rank 3 in both)


@dataclass(frozen=True)
class Resolution:
    """What the customer asks about, as far as the store's data can tell."""

    products: tuple[Product, ...] = ()  # best first: the edition asked for, then its siblings
    series: str | None = None  # the carried series the message names
    matched_by: str = ""  # "name" | "fuzzy" | "retrieval" | ""
    said: str = ""  # what the customer typed, for a fuzzy match ("did you mean")
    not_carried: tuple[str, ...] = ()  # well-known series named that the store does not sell
    volume: int | None = None  # the volume asked for
    format: str | None = None  # the edition asked for (tankobon | omnibus | box_set | digital)
    language: str | None = None  # the language asked for
    volumes_carried: tuple[int, ...] = field(default_factory=tuple)  # English print volumes of ``series``
    #: open world (server/retrieval/titles.py): a title the customer typed that is none of ours, as typed, and
    #: the closest carried series -- offered only as a suggestion, never priced
    unknown: str = ""
    suggestion: str = ""
    #: several carried series fit what the customer typed equally well: ask which one
    candidates: tuple[str, ...] = ()

    @property
    def not_ours(self) -> bool:
        """A title was named that the answer must not price: one we do not carry (listed or not), or one to ask
        about first."""
        return bool(self.not_carried or self.unknown or self.candidates)

    @property
    def volume_missing(self) -> bool:
        """A volume was asked for that the store does not have in that series."""
        return self.series is not None and self.volume is not None and not any(
            p.volume == self.volume for p in self.products
        )


class EntityResolver:
    def __init__(self, catalog: SeriesCatalog, *, fuzzy_cutoff: float = 86.0, titles: Thresholds = Thresholds()) -> None:
        self.catalog = catalog
        self.fuzzy_cutoff = fuzzy_cutoff
        self.titles = titles
        names = catalog.series_names()
        self._names_of: dict[str, list[str]] = {}
        for n in names:  # the Latin-script names and aliases of carried series ("Café ..." included)
            if n.carried and name_words(n.name):
                self._names_of.setdefault(n.series, []).append(n.name)
        self._not_carried = {n.words: n.series for n in names if not n.carried and n.words}
        self._carried_words = {n.words for n in names if n.carried and n.words}
        # fuzzy vocabulary: ascii names of >= 6 letters (short aliases like "csm" only match exactly)
        self._fuzzy = [(" ".join(n.words), n) for n in names if n.words and len("".join(n.words)) >= 6]
        self._fuzzy_keys = [k for k, _ in self._fuzzy]
        self._max_words = max((len(n.words) for n in names), default=1)

    def resolve(self, text: str, chunks: Sequence[ScoredChunk] = (), *, limit: int = 3) -> Resolution:
        fmt, language = requested_format(text), requested_language(text)
        volume = requested_volume(text)
        named = self.catalog.find_products(text, 50)
        not_carried = self._not_carried_in(text)
        if named:
            series = named[0].series
            verdicts = [v for v in (self._judge(text, s) for s in dict.fromkeys(p.series for p in named)) if v]
            verdict = best_of(verdicts)
            if verdict is not None and verdict.outcome in ("unknown", "ask") and not not_carried:
                return self._not_ours(verdict, volume, fmt, language)  # "Kamuy of the Paper Moon"
            if verdict is not None and verdict.outcome == "match" and len(same := tied(verdicts, verdict)) > 1:
                return Resolution(candidates=tuple(same), volume=volume, format=fmt, language=language)
            if verdict is not None and verdict.outcome == "match" and verdict.best.series != series:  # the closer name
                series = verdict.best.series
                named = [p for p in named if p.series == series]
            if volume is None:  # a bare number that is a volume of the series ("jjk 5", "ダンジョン飯 3 how much")
                volume = _bare_volume(text, series, named)
            return self._pick(series, named, "name", "", not_carried, volume, fmt, language, limit)
        if not not_carried:
            hit = self._fuzzy_match(text)
            if hit is not None:
                said, name = hit
                if not name.carried:
                    return Resolution(not_carried=(name.series,), said=said, volume=volume, format=fmt, language=language)
                verdict = self._judge(text, name.series)
                if verdict is not None and verdict.outcome in ("unknown", "ask"):
                    return self._not_ours(verdict, volume, fmt, language)
                products = self.catalog.series_products(name.series)
                if volume is None and said:  # a number right after the title typed: "is berserkk 2 in stock"
                    volume = _bare_volume(text, name.series, products, after=said)
                return self._pick(name.series, products, "fuzzy", said, (), volume, fmt, language, limit)
        if not_carried:
            return Resolution(not_carried=tuple(not_carried), volume=volume, format=fmt, language=language)
        return self._open_world(text, chunks, volume, fmt, language, limit)

    def recommend(self, text: str, res: Resolution, chunks: Sequence[ScoredChunk], limit: int) -> list[Product]:
        """Picks for "something like X" / a genre or mood: first volumes sharing the genres asked for (or X's),
        else the products behind the retrieved chunks."""
        genres = requested_genres(text)
        exclude = None
        if res.series and res.products:
            genres = genres or list(res.products[0].genres)
            exclude = res.series
        elif res.not_carried:  # "something like Chainsaw Man": its genres, from series.jsonl
            genres = genres or list(self.catalog.series_genres(res.not_carried[0]))
        if genres:
            picks = self.catalog.products_by_genre(genres, limit, exclude_series=exclude)
            if picks:
                return picks
        by_series: dict[str, Product] = {}  # one pick per series, the first volume in English print preferred
        for p in sorted(self.related(chunks, limit * 4), key=lambda p: (p.language != "English", p.format != "tankobon")):
            if p.series != exclude and p.series not in by_series:
                by_series[p.series] = p
        return list(by_series.values())[:limit]

    def policies(
        self, text: str, chunks: Sequence[ScoredChunk], limit: int = 3, *, titles: Sequence[str] = ()
    ) -> list[ScoredChunk]:
        """The policy sections that answer ``text``: BM25 over the store's sections (the message, its English
        glosses and policy synonyms) fused with the dense-retrieved policy chunks by reciprocal rank.

        ``titles``: series the message names; their words and volume numbers are left out of the lexical query
        ("Vol 7 of Onigiri Ninja Academy came damaged" asks about damage, not about the word "volume")."""
        query = expand_query(_without_titles(text, titles) if titles else text)
        extra = [word for pattern, word in _POLICY_SYNONYMS if pattern.search(text)]
        lexical = self.catalog.search_policies(" ".join([query, *extra]), limit * 3)
        dense = [c for c in chunks if c.chunk.source_type == "policy"]
        fused: dict[str, float] = {}
        by_doc: dict[str, ScoredChunk] = {}
        for rank, c in enumerate(dense):
            fused[c.chunk.doc_id] = fused.get(c.chunk.doc_id, 0.0) + 1.0 / (RRF_K + rank)
            by_doc.setdefault(c.chunk.doc_id, c)
        for rank, section in enumerate(lexical):
            doc_id = f"policy:{section.policy_id}"
            fused[doc_id] = fused.get(doc_id, 0.0) + 1.0 / (RRF_K + rank)
            by_doc.setdefault(doc_id, ScoredChunk(
                Chunk(chunk_id=doc_id, doc_id=doc_id, source_type="policy", text=f"{section.title}\n{section.text}"), 0.0))
        lexical_rank = {f"policy:{p.policy_id}": i for i, p in enumerate(lexical)}
        # on a tie the lexical rank decides: it matched the customer's own words
        ordered = sorted(fused, key=lambda d: (-fused[d], lexical_rank.get(d, len(lexical))))[:limit]
        return [ScoredChunk(by_doc[d].chunk, fused[d]) for d in ordered]

    def related(self, chunks: Sequence[ScoredChunk], limit: int) -> list[Product]:
        """Products behind retrieved chunks, best first (for recommendations and "something similar")."""
        out: dict[str, Product] = {}
        for c in chunks:
            if c.chunk.asin and c.chunk.asin not in out:
                p = self.catalog.get_product(c.chunk.asin)
                if p is not None:
                    out[p.asin] = p
            if len(out) >= limit:
                break
        return list(out.values())

    # ------------------------------------------------------------------ internals
    def _pick(
        self, series: str, candidates: Sequence[Product], how: str, said: str, not_carried: Sequence[str],
        volume: int | None, fmt: str | None, language: str | None, limit: int,
    ) -> Resolution:
        """The product asked for first: same series, the volume, the edition and language asked for."""
        pool = [p for p in self.catalog.series_products(series)] or list(candidates)
        volumes = tuple(sorted({p.volume for p in pool if p.volume is not None and p.format == "tankobon"
                                and p.language == "English"}))

        def rank(p: Product) -> tuple:
            return (
                volume is not None and p.volume != volume,
                fmt is not None and p.format != fmt,
                p.language != (language or "English"),
                p.format != "tankobon",  # print first when the edition asked for is missing
                p.volume or 0,
                p.asin,
            )

        if fmt == "box_set":
            volume = None  # a box set has no volume number
        if volume is not None and any(p.volume == volume for p in pool):
            pool = [p for p in pool if p.volume == volume]  # that volume's editions only
        ordered = sorted(pool, key=rank)
        return Resolution(
            products=tuple(ordered[:limit]), series=series, matched_by=how, said=said,
            not_carried=tuple(not_carried), volume=volume, format=fmt, language=language, volumes_carried=volumes,
        )

    def _not_carried_in(self, text: str) -> list[str]:
        found: list[str] = []
        words = _words(text)
        i = 0
        while i < len(words):
            for n in range(min(self._max_words, len(words) - i), 0, -1):
                key = tuple(words[i : i + n])
                if key in self._carried_words:  # a carried name at this position wins ("Naruto" in "Boruto...")
                    i += n - 1
                    break
                series = self._not_carried.get(key)
                if series:
                    found.append(series)
                    i += n - 1
                    break
            i += 1
        for n in self.catalog.script_mentions(text):
            if not n.carried:
                found.append(n.series)
        return list(dict.fromkeys(found))

    def _fuzzy_match(self, text: str) -> tuple[str, object] | None:
        words = _words(text)
        best: tuple[float, str, object] | None = None
        for size in range(1, min(self._max_words, 6) + 1):
            for i in range(0, len(words) - size + 1):
                window = " ".join(words[i : i + size])
                if len(window.replace(" ", "")) < 6 or set(words[i : i + size]) <= _GENERIC_WORDS:
                    continue
                hit = process.extractOne(window, self._fuzzy_keys, scorer=fuzz.ratio, score_cutoff=self.fuzzy_cutoff)
                if hit is not None and (best is None or hit[1] > best[0]):
                    best = (hit[1], window, self._fuzzy[hit[2]][1])
        return None if best is None else (best[1], best[2])

    def _judge(self, text: str, series: str) -> TitleVerdict | None:
        names = self._names_of.get(series)
        return judge(measure(text, series, names), self.titles) if names else None

    def _not_ours(self, verdict: TitleVerdict, volume, fmt, language) -> Resolution:
        """Part of one of our names and nothing else: ask if it is the one meant. Title words of the customer's
        that our name does not explain: not something we carry -- name what they typed; the closest series is a
        suggestion only. Neither states a price."""
        best = verdict.best
        if verdict.outcome == "ask":
            return Resolution(candidates=(best.series,), volume=volume, format=fmt, language=language)
        suggestion = best.series if best.name_coverage >= self.titles.suggest_name else ""
        return Resolution(unknown=best.span, suggestion=suggestion, volume=volume, format=fmt, language=language)

    def _open_world(
        self, text: str, chunks: Sequence[ScoredChunk], volume, fmt, language, limit: int
    ) -> Resolution:
        """The series behind the retrieved chunks, judged: one the message names answers; several named equally
        well are asked about; a title of the customer's that only shares words with ours is declined as typed."""
        related = self.related(chunks, limit * 3)
        verdicts = [v for v in (self._judge(text, s) for s in dict.fromkeys(p.series for p in related)) if v]
        best = best_of(verdicts)
        if best is None or best.outcome == "none":
            return Resolution(volume=volume, format=fmt, language=language)
        if best.outcome != "match":
            return self._not_ours(best, volume, fmt, language)
        if len(same := tied(verdicts, best)) > 1:
            return Resolution(candidates=tuple(same), volume=volume, format=fmt, language=language)
        series = best.best.series
        products = self.catalog.series_products(series) or [p for p in related if p.series == series]
        return self._pick(series, products, "retrieval", "", (), volume, fmt, language, limit)


_VOLUME_WORDS = re.compile(r"\b(?:vol(?:ume)?s?\.?|#)\s*\d+\b|\d+\s*巻", re.I)


def _without_titles(text: str, titles: Sequence[str]) -> str:
    """``text`` without the words of ``titles`` and volume mentions (the policy half of a product message)."""
    drop = {w for t in titles for w in _words(t) if w not in _GENERIC_WORDS or len(w) > 3}
    text = _VOLUME_WORDS.sub(" ", text)
    return " ".join(w for w in text.split() if not (_words(w) and set(_words(w)) <= drop))


#: genre words and moods -> the catalog's genre labels
_GENRES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = tuple(
    (re.compile(p, re.I), g) for p, g in (
        (r"shou?nen|少年", ("shonen",)), (r"seinen|青年", ("seinen",)), (r"shou?jo|少女", ("shojo",)),
        (r"josei", ("josei",)), (r"isekai|another world|異世界", ("isekai",)), (r"mecha|robot", ("mecha",)),
        (r"slice[- ]of[- ]life|cozy|wholesome|chill|日常", ("slice of life",)),
        (r"horror|scary|creepy|spooky|ホラー|怖", ("horror",)), (r"romance|romantic|love story|恋愛", ("romance",)),
        (r"sports?|volleyball|basketball|soccer|baseball|スポーツ", ("sports",)),
        (r"fantasy|magic|ファンタジー", ("fantasy",)), (r"myster(?:y|ies)|detective|whodunn?it|ミステリー", ("mystery",)),
        (r"sci-?fi|science fiction|space|SF", ("sci-fi",)), (r"comedy|funny|hilarious|laugh|コメディ|笑", ("comedy",)),
        (r"cooking|food|cook|グルメ|料理", ("cooking",)), (r"psychological|mind[- ]bending", ("psychological",)),
        (r"action|fights?|battle|バトル", ("action",)), (r"dark|grim|ダーク", ("seinen", "psychological", "horror")),
        (r"historical|samurai|history", ("historical",)), (r"drama|cry|sad|tearjerker|泣ける", ("drama",)),
        (r"supernatural|ghosts?|yokai|spirits", ("supernatural",)), (r"music|band|idol", ("music",)),
        (r"adventure|journey|pirates?", ("adventure",)), (r"military|\bwar\b|soldiers?", ("military",)),
        (r"crime|mafia|yakuza|gangsters?", ("crime",)),
    )
)


def requested_genres(text: str) -> list[str]:
    out: list[str] = []
    for pattern, genres in _GENRES:
        if pattern.search(text):
            out.extend(genres)
    return list(dict.fromkeys(out))


def requested_format(text: str) -> str | None:
    for fmt, pattern in FORMAT_WORDS:
        if pattern.search(text):
            return fmt
    return None


def requested_language(text: str) -> str | None:
    for language, pattern in _LANGUAGE_WORDS.items():
        if pattern.search(text):
            return language
    return None


_VOLUME = re.compile(
    r"(?:\bvol(?:ume)?s?\.?|\bv\.?(?=\d)|#|\bbook|\bno\.|\bnumber|\bomnibus|第|\bdai)\s*(\d{1,4})"
    r"|(\d{1,4})\s*(?:巻|-?\s?kan\b)",
    re.I,
)


def requested_volume(text: str) -> int | None:
    m = _VOLUME.search(text)
    if m:
        return int(m.group(1) or m.group(2))
    return None


_COUNT = re.compile(r"(\d+)\s*(?:copies|copy|pcs)\b", re.I)


def _bare_volume(text: str, series: str, named: Sequence[Product], *, after: str = "") -> int | None:
    """A number in ``text`` that is a volume of ``series``. ``after`` (a title as typed, found by spelling): only the
    number right after it, not a range or an "N-in-1" ("is berserkk 2 in stock"). Else the best-ranked product's
    volume when the text has it (the text search ranked the number in), else the last such number (one after the
    title: "how much 4 slam dunk 7"); a count ("2 copies of naruto") is not a volume."""
    volumes = {str(p.volume): p.volume for p in named if p.series == series and p.volume is not None}
    if after:
        m = re.search(re.escape(after) + r"\s*(\d{1,3})\b(?!\s*-|\s*in\b)", text, re.I)
        return volumes.get(str(int(m.group(1)))) if m else None
    words = _words(text)
    if named[0].series == series and named[0].volume is not None and str(named[0].volume) in words:
        return named[0].volume
    counts = set(_COUNT.findall(text))
    return next((volumes[w] for w in reversed(words) if w in volumes and w not in counts), None)


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return re.findall(r"[a-z]+|[0-9]+", re.sub(r"['`]", "", folded))
