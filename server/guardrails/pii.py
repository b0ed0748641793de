"""PII redaction for the customer's message (before any model sees it) and for answers.

Each hit becomes a placeholder. The kinds, in the order they are redacted:

- ``[EMAIL]``: plain addresses (also a full-width ``＠``) and obfuscated ones: ``name (at) domain (dot) com``,
  ``name [at] domain [dot] co [dot] uk``, ``john dot smith at gmail dot com``, ``john.smith at gmail.com`` and
  spaced characters ``j o h n @ g m a i l . c o m``. A spelled-out ``at`` needs a mail provider or a
  multi-part local name, so "it at amazon.com" is kept.
- ``[DOB]``: any date (``04/12/1987``, ``1987-04-12``, ``12.04.1987``, ``April 12, 1987``, ``12 April 1987``,
  ``1987年4月12日``) after a birth word (dob, date of birth, born, birthday, 生年月日); and, in a message that
  also held a national id or a passport, any full date with a year 1900-2015. Other dates (release and
  order dates) are kept.
- ``[NATIONAL_ID]``: US SSNs (``123-45-6789``, ``123 45 6789``, or 9 bare digits after an SSN word), UK
  National Insurance numbers (``AB 12 34 56 C``), Canadian SINs (3-3-3 digits after a SIN word), Japan's
  My Number (12 digits after マイナンバー / my number) and an id of 6+ characters after "national id",
  "id number", "tax id" or "aadhaar".
- ``[PASSPORT]``: 6-9 letters and digits (at least one digit) a few words after "passport" / パスポート.
- ``[CARD]``: payment card numbers (13-19 digits that pass the Luhn check and start like a card; an
  order-like 16-digit number that fails Luhn is kept).
- ``[PHONE]``: international ``+CC`` and US formats, 10-11 bare digits after a phone word, 7-15 digits in
  odd groupings (``5 5 5 1 2 3 4 5 6 7``, ``555 123 45 67``) and digits spelled as words (seven or more).
- ``[ADDRESS]``: street addresses (number + street name + suffix, optional unit and "City, ST 12345").

Identity documents go before cards and phones so that an SSN is not taken for a phone number. Order IDs
(``MA-12345678``), ASINs, ISBNs, prices, volume numbers, ZIP codes, years and tracking numbers are not PII
and are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

from server.guardrails.base import GuardrailAction
from server.ids import ASIN, ORDER_ID_LOOSE

NAME = "pii"

#: A validation function: the matched value and the text before it -> redact it?
Keep = Callable[[str, str], bool]

# --- emails ------------------------------------------------------------------------------------------------

# ASCII boundaries so that an address inside Japanese text (連絡先はa@b.comです) is found.
EMAIL_RE = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+[@＠][A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![A-Za-z0-9_-])"
)
# name (at) domain (dot) com, name [at] domain [dot] co [dot] uk, name{at}domain.com
_AT_B = r"\s*[\[({]\s*at\s*[\])}]\s*"
_DOT_B = r"\s*[\[({]\s*dot\s*[\])}]\s*"
BRACKETED_EMAIL_RE = re.compile(
    rf"(?<![\w.+-])[a-z0-9._%+-]+(?:{_DOT_B}[a-z0-9._%+-]+)*{_AT_B}"
    rf"[a-z0-9-]+(?:(?:{_DOT_B}|\.)[a-z0-9-]+)*(?:{_DOT_B}|\.)[a-z]{{2,}}\b",
    re.IGNORECASE,
)
# john dot smith at gmail dot com, john.smith at gmail.com (the top-level domain must be a known one).
_DOT_W = r"(?:\s+dot\s+|\.)"
_TLD = r"com|net|org|edu|gov|info|biz|io|co|uk|us|ca|au|nz|jp|de|fr|es|it|nl|ie|in|kr|cn|tw|hk|sg|br|mx|me"
SPELLED_EMAIL_RE = re.compile(
    rf"(?<![\w.+@-])(?P<local>[a-z0-9_%+-]+(?:{_DOT_W}[a-z0-9_%+-]+)*)\s+at\s+"
    rf"(?P<domain>[a-z0-9-]+(?:{_DOT_W}[a-z0-9-]+)*){_DOT_W}(?:{_TLD})\b(?![.@-]\w)",
    re.IGNORECASE,
)
_MAIL_PROVIDERS = {
    "gmail", "googlemail", "yahoo", "ymail", "hotmail", "outlook", "live", "msn", "icloud", "aol", "proton",
    "protonmail", "gmx", "yandex", "zoho", "qq", "naver", "docomo", "ezweb", "softbank", "mail",
}
_VOLUME_LIKE = re.compile(r"(?i)(?:vols?|volume|no|ch|chapter|ep|book|v)\W*\d+")  # "vol.3 at amazon.com"
# j o h n @ g m a i l . c o m: single characters, one space apart.
SPACED_EMAIL_RE = re.compile(
    r"(?<!\S)(?:[A-Za-z0-9._%+-] )+[@＠](?: [A-Za-z0-9-])+(?: \.(?: [A-Za-z0-9-])+)+(?!\S)"
)

# --- dates of birth ----------------------------------------------------------------------------------------

_DAY = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH_NUM = r"(?:0?[1-9]|1[0-2])"
_MONTH = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ORD = r"(?:st|nd|rd|th)?"
_YEAR4 = r"(?:19|20)\d\d"


def _date_pattern(year: str) -> str:
    """A full date (day, month and ``year``) in the numeric, month-name and Japanese forms."""
    return (
        r"(?<![A-Za-z0-9/.\-])(?:"
        rf"{_YEAR4}[/.\-]{_MONTH_NUM}[/.\-]{_DAY}"  # 1987-04-12
        rf"|{_DAY}[/.\-]{_DAY}[/.\-]{year}"  # 04/12/1987, 12.04.1987, 4-12-87
        rf"|{_DAY} {_DAY} {_YEAR4}"  # 12 04 1987
        rf"|{_MONTH}\s+{_DAY}{_ORD},?\s+{year}"  # April 12, 1987
        rf"|{_DAY}{_ORD}\s+(?:of\s+)?{_MONTH},?\s+{year}"  # 12 April 1987
        rf"|{_YEAR4}年{_MONTH_NUM}月{_DAY}日"  # 1987年4月12日
        r")(?![A-Za-z0-9/\-]|\.\d)"
    )


_BIRTH_WORD = r"\b(?:dob|d\.o\.b\b\.?|date\s+of\s+birth|birth\s*date|born(?:\s+on)?|birthday)\b|生年月日|誕生日"
_YEAR = r"(?:(?:19|20)?\d\d)"  # after a birth word a two-digit year is enough
DOB_RE = re.compile(rf"(?:{_BIRTH_WORD})[^\d\n]{{0,12}}?(?P<date>{_date_pattern(_YEAR)})", re.IGNORECASE)
FULL_DATE_RE = re.compile(_date_pattern(_YEAR4), re.IGNORECASE)  # only next to an identity document

# --- national ids and passports ----------------------------------------------------------------------------

# An id: ASCII letters and digits with at least one digit, not glued to another id (MA-12345678 keeps its
# digits). The words before it are bounded by ``[^\d\n]{0,N}?`` so the id is the first number after them.
_ID_LEFT = r"(?<![A-Za-z0-9\-])(?=[A-Za-z0-9-]*\d)"
_ID_RIGHT = r"(?![A-Za-z0-9\-])"
SSN_RE = re.compile(r"(?<![\w-])\d{3}(?P<sep>[- ])\d{2}(?P=sep)\d{4}(?![\w-])")
SSN_WORD_RE = re.compile(
    r"(?i)\b(?:social\s+security(?:\s+(?:number|no\.?))?|ssn|social)\b[^\d\n]{0,15}?(?P<id>(?<!\d)\d{9}(?!\d))"
)
UK_NINO_RE = re.compile(
    r"(?i)(?<![A-Za-z0-9])(?!bg|gb|nk|kn|tn|nt|zz)[a-ceghj-pr-tw-z][a-ceghj-npr-tw-z]"
    r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[a-d](?![A-Za-z0-9])"
)
CA_SIN_RE = re.compile(
    r"(?i)\b(?:sin|social\s+insurance(?:\s+(?:number|no\.?))?)\b[^\d\n]{0,15}?"
    r"(?P<id>(?<![\d-])\d{3}(?P<sep>[ -]?)\d{3}(?P=sep)\d{3}(?![\d-]))"
)
MY_NUMBER_RE = re.compile(
    r"(?i)(?:\bmy\s*number\b|マイナンバー|個人番号)[^\d\n]{0,12}?"
    r"(?P<id>(?<![\d-])\d{4}[ -]?\d{4}[ -]?\d{4}(?![\d-]))"
)
GENERIC_ID_RE = re.compile(
    r"(?i)(?:\bnational\s+id(?:entity|entification)?(?:\s+(?:card|number|no\.?))?|\bid\s*(?:number|no\b\.?|#)"
    r"|\bidentity\s+(?:card\s+)?(?:number|no\b\.?)|\btax\s*(?:payer\s*)?id(?:entification)?(?:\s+(?:number|no\.?))?"
    r"|\baadhaa?r(?:\s+(?:card\s+)?(?:number|no\.?))?)"
    rf"[^\d\n]{{0,15}}?(?P<id>{_ID_LEFT}[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*(?: \d{{3,}})*){_ID_RIGHT}"
)
PASSPORT_RE = re.compile(
    rf"(?i)(?:\bpassport|パスポート|旅券)[^\d\n]{{0,25}}?(?P<id>{_ID_LEFT}[A-Za-z0-9]{{6,9}}){_ID_RIGHT}"
)
_VOLUME_BEFORE = re.compile(r"(?i)\b(?:vols?|volumes?|ch|chapters?|ep|episodes?)\.?\s*#?$")  # "passport ... vol 123456"
# Store identifiers that an id pattern may reach: order ids, ASINs (server/ids.py; either case), ISBNs; and
# "order id number ..." triggers.
_CATALOG_ID_RE = re.compile(rf"(?i){ORDER_ID_LOOSE}|{ASIN}|97[89]\d{{10}}")
_STORE_ID_CONTEXT = re.compile(
    r"(?i)\b(?:order|tracking|asin|isbn|product|item|customer|account|member)\s+id\b[^\d\n]{0,25}$"
)

# --- cards and phones --------------------------------------------------------------------------------------

CARD_RE = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_SEP = r"[\s.\-]"
PHONE_RES = (
    # International: +CC then 2-5 groups, 8-15 digits in all (checked below).
    re.compile(rf"(?<![\w+])\+\d{{1,3}}(?:{_SEP}?\(?\d{{1,5}}\)?){{2,5}}(?![\w-])"),
    # US with separators: (555) 123-4567, 555-123-4567, 555.123.4567, 1-555-123-4567.
    re.compile(rf"(?<![\w-])(?:1{_SEP}?)?(?:\(\d{{3}}\)\s?|\d{{3}}{_SEP})\d{{3}}{_SEP}\d{{4}}(?![\w-])"),
    # Bare 10-11 digits only when a phone word precedes them.
    re.compile(
        r"(?i)(?:call|phone|tel|cell|mobile|text me at|whatsapp|number is|reach me at)[^\d\n]{0,15}"
        r"(?P<num>(?<!\d)1?\d{10}(?!\d))"
    ),
)
# Odd groupings: 5 5 5 1 2 3 4 5 6 7, 555 123 45 67, 55.51.23.45.67 (the whole run is checked below).
SPACED_PHONE_RE = re.compile(r"(?<![\w.\-$¥€£#/])\d+(?:(?:\s?[.\-]\s?|\s)\d+){2,}(?![\w\-/]|\.\d)")
_DIGIT_WORD = r"(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)"
WORD_PHONE_RE = re.compile(rf"(?i)\b{_DIGIT_WORD}(?:[\s,\-]+{_DIGIT_WORD})+\b")
_NOT_A_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:tracking|track|isbn(?:-?1[03])?|asin|order|vols?|volumes?|chapters?|pages?|fedex|usps|ups|dhl)\b\.?"
    r"(?:\s*(?:number|no\.?|#|id|code|is|was|:))*\s*$"
)
_NUMERIC_DATE_RE = re.compile(
    rf"{_YEAR4}(?P<a>[ ./\-]){_MONTH_NUM}(?P=a){_DAY}|{_DAY}(?P<b>[ ./\-]){_DAY}(?P=b){_YEAR4}"
)

# --- addresses ---------------------------------------------------------------------------------------------

_STREET_SUFFIX = (
    r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|"
    r"Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Loop"
)
ADDRESS_RE = re.compile(
    rf"(?<![\w-])(?P<num>\d{{1,6}}[A-Za-z]?)\s+(?P<name>(?:[A-Za-z0-9'.\-]+\s+){{1,4}}?)(?:{_STREET_SUFFIX})\b\.?"
    r"(?:,?\s+(?:Apt|Apartment|Suite|Ste|Unit|#)\.?\s*[A-Za-z0-9\-]+)?"
    r"(?-i:,\s*[A-Z][A-Za-z .]+,\s*[A-Z]{2}(?:\s+\d{5}(?:-\d{4})?)?)?",
    re.IGNORECASE,
)
_NOT_STREET_WORDS = {
    "of", "the", "on", "in", "for", "per", "and", "or", "to", "a", "an", "is", "are", "was", "it", "my",
    "volume", "volumes", "vol", "vols", "book", "books", "copy", "copies", "item", "items", "days", "weeks",
    "hours", "times", "pages", "chapters", "episodes", "at", "by", "from", "with", "all", "more", "off",
    "dollars", "bucks", "usd", "order", "orders", "pack", "set", "sets", "manga", "each",
}


def luhn_ok(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


def _card_like(digits: str) -> bool:
    return 13 <= len(digits) <= 19 and digits[0] in "3456" and luhn_ok(digits)


def _isbn_like(digits: str) -> bool:
    return len(digits) == 13 and digits[:3] in ("978", "979")


def _isbn10_like(value: str) -> bool:
    """1-4215-0665-8: four hyphenated groups, a one-digit check group and a valid ISBN-10 checksum."""
    groups = value.split("-")
    digits = "".join(groups)
    if len(groups) != 4 or len(groups[-1]) != 1 or len(digits) != 10 or not digits.isdigit():
        return False
    return sum((10 - i) * int(d) for i, d in enumerate(digits)) % 11 == 0


@dataclass(frozen=True)
class Redaction:
    text: str
    kinds: tuple[str, ...]  # one entry per redacted span, e.g. ("EMAIL", "PHONE")

    @property
    def actions(self) -> tuple[GuardrailAction, ...]:
        if not self.kinds:
            return ()
        counts: dict[str, int] = {}
        for k in self.kinds:
            counts[k] = counts.get(k, 0) + 1
        detail = ",".join(f"{k}x{n}" for k, n in sorted(counts.items()))
        return (GuardrailAction(NAME, "redacted", detail),)


class PiiRedactor:
    name = NAME

    def redact(self, text: str) -> Redaction:
        kinds: list[str] = []

        def sub(pattern: re.Pattern[str], kind: str, s: str, keep: Keep = _always, value: str | int = 0) -> str:
            out, last = [], 0
            for m in pattern.finditer(s):
                start, end = m.span(value)
                if not keep(m.group(value), s[:start]):
                    continue
                out.append(s[last:start])
                out.append(f"[{kind}]")
                kinds.append(kind)
                last = end
            out.append(s[last:])
            return "".join(out)

        s = sub(EMAIL_RE, "EMAIL", text)
        s = sub(BRACKETED_EMAIL_RE, "EMAIL", s)
        s = sub(SPELLED_EMAIL_RE, "EMAIL", s, _spelled_email_ok)
        s = sub(SPACED_EMAIL_RE, "EMAIL", s)
        s = sub(DOB_RE, "DOB", s, value="date")  # before the id passes take its digits
        s = sub(SSN_RE, "NATIONAL_ID", s)
        s = sub(SSN_WORD_RE, "NATIONAL_ID", s, value="id")
        s = sub(UK_NINO_RE, "NATIONAL_ID", s)
        s = sub(CA_SIN_RE, "NATIONAL_ID", s, value="id")
        s = sub(MY_NUMBER_RE, "NATIONAL_ID", s, value="id")
        s = sub(GENERIC_ID_RE, "NATIONAL_ID", s, _generic_id_ok, "id")
        s = sub(PASSPORT_RE, "PASSPORT", s, _passport_ok, "id")
        if "NATIONAL_ID" in kinds or "PASSPORT" in kinds:
            s = sub(FULL_DATE_RE, "DOB", s, _birth_year_ok)
        s = sub(CARD_RE, "CARD", s, lambda v, _: _card_like(re.sub(r"\D", "", v)))
        for i, pat in enumerate(PHONE_RES):
            s = sub(pat, "PHONE", s, _phone_ok, "num" if i == 2 else 0)
        s = sub(SPACED_PHONE_RE, "PHONE", s, _spaced_phone_ok)
        s = sub(WORD_PHONE_RE, "PHONE", s, _word_phone_ok)
        s = sub(ADDRESS_RE, "ADDRESS", s, _address_ok)
        return Redaction(s, tuple(kinds))


def _always(value: str, before: str) -> bool:
    return True


def _spelled_email_ok(value: str, before: str) -> bool:
    m = SPELLED_EMAIL_RE.fullmatch(value)
    if m is None:
        return False
    local, domain = m.group("local"), m.group("domain").lower()
    if _VOLUME_LIKE.fullmatch(local):
        return False
    first_label = re.split(r"\s+dot\s+|\.", domain)[0]
    multi_part = bool(re.search(r"[._]|\s+dot\s+|[a-z]\d|\d[a-z]", local, re.IGNORECASE))
    return first_label in _MAIL_PROVIDERS or multi_part


def _generic_id_ok(value: str, before: str) -> bool:
    if _CATALOG_ID_RE.fullmatch(value) or _STORE_ID_CONTEXT.search(before[-60:]):
        return False
    return len(re.sub(r"[^A-Za-z0-9]", "", value)) >= 6


def _passport_ok(value: str, before: str) -> bool:
    return not _CATALOG_ID_RE.fullmatch(value) and not _VOLUME_BEFORE.search(before)


def _birth_year_ok(value: str, before: str) -> bool:
    year = re.search(r"(?:19|20)\d\d", value)
    return year is not None and 1900 <= int(year.group()) <= 2015


def _phone_ok(value: str, before: str) -> bool:
    digits = re.sub(r"\D", "", value)
    return 8 <= len(digits) <= 15 and not _isbn_like(digits)


def _spaced_phone_ok(value: str, before: str) -> bool:
    groups = re.findall(r"\d+", value)
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15 or max(len(g) for g in groups) > 4 or _isbn_like(digits) or _isbn10_like(value):
        return False
    if "." in value and re.search(r"\s", value):  # "9.99 10.99 11.99" is a list of prices
        return False
    return not _NUMERIC_DATE_RE.fullmatch(value) and not _NOT_A_PHONE_CONTEXT.search(before[-40:])


def _word_phone_ok(value: str, before: str) -> bool:
    return 7 <= len(re.findall(_DIGIT_WORD, value, re.IGNORECASE)) <= 15


def _address_ok(value: str, before: str) -> bool:
    m = ADDRESS_RE.match(value)
    if m is None:
        return False
    words = [w.lower().strip(".'") for w in m.group("name").split()]
    if not words or any(w in _NOT_STREET_WORDS for w in words):
        return False
    # "5 stars Dr" style noise: the street name needs a letter word that is not just a number.
    return any(re.search(r"[a-z]", w) for w in words)
