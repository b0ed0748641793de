"""The model query: the customer's message plus English glosses of its Japanese store words.

The classifier, the embedder, the adapter and the reranker are English MiniLM models; 「送料はいくらですか」
embeds close to nothing useful. Appending the English words a Japanese message contains ("送料" -> "shipping
cost") lets the same models classify it and retrieve the right chunk; the message itself is kept first and
unchanged. The intent classifier is trained on ``expand(text)`` too (model_repository/training/intent.py), so
serving and training see the same input. Romaji ("henpin kigen wa?", "zaiko arimasu ka") gets the same treatment
word by word (:data:`ROMAJI`; only words that are not also English words). The tables are hand-written store
vocabulary; the golden set's hand-written Japanese and romaji messages (written apart from them) measure how far
they carry.
"""

from __future__ import annotations

import re

GLOSSES: tuple[tuple[str, str], ...] = (
    ("送料", "shipping cost"), ("発送", "ship shipping"), ("配送", "delivery shipping"), ("配達", "delivered delivery"),
    ("届", "arrive delivery"), ("速達", "expedited overnight shipping"), ("海外", "international shipping"),
    ("カナダ", "Canada international"), ("イギリス", "UK international"), ("ドイツ", "Germany international"),
    ("オーストラリア", "Australia international"), ("日本", "Japan"), ("メキシコ", "Mexico international"),
    ("フランス", "France international"), ("関税", "customs duties"),
    ("返品", "return returns"), ("返金", "refund"), ("交換", "exchange"), ("破損", "damaged"), ("破れ", "damaged torn"),
    ("違う", "wrong item"), ("不良", "defective"), ("期限", "window days"), ("開封", "opened"),
    ("支払", "payment methods pay"), ("カード", "card"), ("請求", "charged charge"), ("課金", "charged"),
    ("予約", "pre-order"), ("会費", "membership price"), ("マンガクラブ", "Manga Club Premium membership"),
    ("会員", "membership member"), ("ポイント", "Manga Points"), ("有効期限", "expire"),
    ("クーポン", "coupon code"), ("割引", "discount"), ("セール", "sale"), ("まとめ買い", "bundle discount"),
    ("価格", "price"), ("値段", "price"), ("いくら", "how much price"), ("安", "cheaper"), ("合わせ", "price match"),
    ("在庫", "in stock"), ("発売", "release date"), ("最新刊", "latest volume release"), ("作者", "author"),
    ("全何巻", "how many volumes"), ("完結", "complete finished"), ("対象年齢", "age rating"),
    ("英語版", "English edition"), ("電子", "digital edition"), ("ボックス", "box set"),
    ("おすすめ", "recommend"), ("似た", "similar like"), ("ホラー", "horror"), ("ファンタジー", "fantasy"),
    ("恋愛", "romance"), ("スポーツ", "sports"), ("ミステリー", "mystery"), ("異世界", "isekai"),
    ("少年", "shonen"), ("青年", "seinen"), ("少女", "shojo"), ("泣ける", "emotional drama"), ("怖い", "horror"),
    ("注文", "order"), ("追跡", "tracking"), ("状況", "status"), ("届かない", "not arrived where is my order"),
    ("届いてない", "not arrived"), ("止まって", "stuck in transit"), ("いつ届", "when will it arrive"),
    ("身に覚えのない", "unauthorized unknown"), ("不正", "fraud unauthorized"), ("クレーム", "complaint"),
    ("最悪", "worst service"), ("責任者", "manager"), ("担当者", "agent representative"),
    ("オペレーター", "human operator"), ("人間", "human"), ("人と話", "talk to a person"), ("電話", "phone call"),
    ("乗っ取", "account hacked"), ("訴え", "sue lawyer"), ("偽物", "counterfeit fake"),
    ("個人情報", "personal data privacy"), ("削除", "delete"),
    ("こんにちは", "hello"), ("こんばんは", "good evening"), ("おはよう", "good morning"), ("ありがと", "thanks"),
    ("助かり", "thanks helpful"), ("またね", "bye"), ("さようなら", "goodbye"), ("よろしく", "hello nice to meet you"),
    ("了解", "ok got it"), ("ロボット", "are you a bot"), ("好きなの", "do you like"),
    ("教えて", "tell me"), ("プレゼント", "gift"), ("探して", "looking for"), ("読みたい", "want to read"),
    ("おもしろい", "good fun"), ("面白い", "good fun"), ("みたいな", "similar like"), ("っぽい", "similar like"),
    ("何ページ", "how many pages"), ("買えます", "available to buy"), ("ありますか", "do you have"),
    ("二冊", "duplicate two copies"), ("無効", "invalid not working"), ("使えません", "not working"),
    ("使えます", "accept can I use"), ("どのくらい", "how long"),
)


#: romaji word -> English gloss (whole words, lower case; spelling variants customers use).
ROMAJI: dict[str, str] = {
    **dict.fromkeys(("henpin", "henpinn"), "return"), **dict.fromkeys(("henkin", "henkinn"), "refund"),
    **dict.fromkeys(("koukan", "kokan", "koukann"), "exchange"), **dict.fromkeys(("souryou", "soryo", "souryo"), "shipping cost"),
    **dict.fromkeys(("haisou", "haiso", "hassou", "hasso"), "shipping delivery"),
    **dict.fromkeys(("todoku", "todokanai", "todoita", "todokimasu", "todokimasen"), "arrive delivery"),
    "kigen": "window days deadline", "zaiko": "in stock",
    **dict.fromkeys(("nedan", "kakaku"), "price"), "ikura": "how much price", "yasui": "cheap",
    "waribiki": "discount", **dict.fromkeys(("kuupon", "kupon"), "coupon code"),
    **dict.fromkeys(("chuumon", "chumon", "chuumonn"), "order"), "tsuiseki": "tracking",
    "osusume": "recommend", **dict.fromkeys(("niteru", "mitai"), "similar like"),
    "hatsubai": "release date", "saishinkan": "latest volume release", "kaiin": "membership member",
    "shiharai": "payment pay", "yoyaku": "pre-order", "hason": "damaged",
    **dict.fromkeys(("furyou", "furyo"), "defective"), "kanada": "Canada international", "doitsu": "Germany international",
    "igirisu": "UK international", "kaigai": "international shipping", "kanzei": "customs duties",
    **dict.fromkeys(("tantousha", "tantosha", "operetaa", "opereetaa"), "agent representative"),
    "okutte": "ship send", "ningen": "human", **dict.fromkeys(("hanasitai", "hanashitai", "hanasasete"), "talk to"),
    **dict.fromkeys(("arigatou", "arigato", "arigatoo"), "thanks"), **dict.fromkeys(("konnichiwa", "konnichiha"), "hello"),
    "eigo": "English", "eigoban": "English edition", "denshi": "digital edition",
    "nankan": "how many volumes", "kanketsu": "complete finished", "sakusha": "author",
}
_WORD = re.compile(r"[a-z]+")


def expand(text: str) -> str:
    """``text`` plus the English glosses of the Japanese (script or romaji) store words it contains; unchanged if
    none."""
    if text.isascii():
        extra = [ROMAJI[w] for w in _WORD.findall(text.lower()) if w in ROMAJI]
    else:
        extra = [gloss for ja, gloss in GLOSSES if ja in text]
    return f"{text} ({' '.join(dict.fromkeys(extra))})" if extra else text
