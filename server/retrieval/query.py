"""The retrieval query: the customer's message plus English glosses of its Japanese store words.

The embedder, the adapter and the reranker are English models; 「送料はいくらですか」 embeds close to nothing
useful. Appending the English words a Japanese message contains ("送料" -> "shipping cost") lets the same
models retrieve the right policy or product chunk; the message itself is kept first and unchanged.
"""

from __future__ import annotations

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
    ("注文", "order"), ("追跡", "tracking"),
)


def expand(text: str) -> str:
    """``text`` plus the English glosses of the Japanese store words it contains (unchanged if none)."""
    if text.isascii():
        return text
    extra = [gloss for ja, gloss in GLOSSES if ja in text]
    return f"{text} ({' '.join(dict.fromkeys(extra))})" if extra else text
