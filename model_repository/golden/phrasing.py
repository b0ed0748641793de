"""How customers word things: romaji, Japanese and short names, countries, competitors, typos, message keys."""

from __future__ import annotations

import random
import re
from typing import Any

COMPETITORS = ("Amazon", "Barnes & Noble", "Books-A-Million", "Walmart", "Target", "BookOff", "Kinokuniya",
               "Right Stuf", "Powell's")
#: Romaji names customers type (only the ones that are aliases in ``series.jsonl`` are used).
ROMAJI_NAMES = frozenset((
    "wan pisu", "sousou no frieren", "furiiren", "shingeki no kyojin", "kimetsu no yaiba", "dungeon meshi",
    "tongari boushi no atelier", "kaguya sama", "yotsubato", "haikyuu", "golden kamui", "furuba",
    "bishoujo senshi sailor moon", "oshinoko", "boku no hero academia", "hagane no renkinjutsushi",
    "ao no exorcist", "tokyo manji revengers", "kaijuu 8",
))
#: A catalog genre for each well-known series the store does not carry ("something like Chainsaw Man").
NOT_CARRIED_GENRE = {
    "Chainsaw Man": "action", "My Hero Academia": "shonen", "Tokyo Ghoul": "horror", "Hunter x Hunter": "adventure",
    "Bleach": "action", "Dragon Ball": "shonen", "20th Century Boys": "mystery", "One-Punch Man": "comedy",
    "Komi Can't Communicate": "comedy", "Dorohedoro": "fantasy", "Hellsing": "horror", "Solo Leveling": "fantasy",
    "Kaiju No. 8": "sci-fi", "Sakamoto Days": "action", "Fullmetal Alchemist": "fantasy",
    "Tokyo Revengers": "crime", "JoJo's Bizarre Adventure": "adventure", "Bocchi the Rock!": "music",
    "Blue Exorcist": "supernatural", "Black Clover": "fantasy",
}
COUNTRIES = (("Canada", "カナダ", "kanada"), ("the UK", "イギリス", "igirisu"), ("Japan", "日本", "nihon"),
              ("Australia", "オーストラリア", "oosutoraria"), ("Mexico", "メキシコ", "mekishiko"),
              ("New Zealand", "ニュージーランド", "nyuujiirando"), ("Germany", "ドイツ", "doitsu"))
#: Catalog genre -> how a Japanese customer writes it.
GENRE_IN_JAPANESE = {"horror": "ホラー", "romance": "恋愛", "sports": "スポーツ", "fantasy": "ファンタジー", "mystery": "ミステリー",
                     "isekai": "異世界", "slice of life": "日常系", "cooking": "料理", "shonen": "少年", "seinen": "青年",
                     "shojo": "少女", "comedy": "ギャグ", "sci-fi": "SF", "historical": "歴史", "mecha": "ロボット"}
_JAPANESE_SCRIPT = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff00-\uffef]")


def normalise(text: str) -> str:
    """The comparison key of the no-leak check: lowercase, runs of non-word characters -> one space."""
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def has_japanese(text: str) -> bool:
    return bool(_JAPANESE_SCRIPT.search(text))


def typo(text: str, rng: random.Random) -> str:
    """One deterministic keyboard slip in a word of 5+ letters (swap, drop, double or neighbour key)."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 5 and w.isalpha() and not w.isupper()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    op = rng.randrange(4)
    if op == 0 and w[j] != w[j + 1]:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif op == 1:
        w = w[:j] + w[j + 1:]
    elif op == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        near = dict(zip("qwertyuiopasdfghjklzxcvbnm", "wertyuiopqsdfghjklaxcvbnmz"))  # the key to the right
        w = w[:j] + near.get(w[j].lower(), w[j] + w[j]) + w[j + 1:]
    words[i] = w
    return " ".join(words)


def japanese_alias(s: dict[str, Any]) -> str | None:
    """The series' first alias in Japanese script (None when it has none)."""
    return next((a for a in s["aliases"] if has_japanese(a)), None)


def romaji_aliases(s: dict[str, Any]) -> list[str]:
    """The series' aliases that are romaji names customers type."""
    return [a for a in s["aliases"] if a in ROMAJI_NAMES]


def short_aliases(s: dict[str, Any]) -> list[str]:
    """The series' ASCII nicknames: short ones (four letters or fewer) or all lower case."""
    return [a for a in s["aliases"] if a.isascii() and a not in ROMAJI_NAMES and (len(a) <= 4 or a.islower())]
