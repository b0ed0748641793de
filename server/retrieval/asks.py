"""What a message asks for, in words: the lexical signals the facts stage and the template composer share.

The classifier gives one label per message; customers ask two things at once ("where is MA-12345678? also
recommend something like Berserk") or use words the label misses. These patterns are the store-independent
half of that evidence (the other half is the store's data: a title resolved, a policy section found). Each is
compiled once here so the stage that decides which intent the answer addresses and the composer that writes
it read the same words.
"""

from __future__ import annotations

import re

#: Picks asked for, whatever the classifier made of the rest of the message.
RECOMMEND = re.compile(
    r"\brecommend|\bsuggest|\bsomething (?:like|similar)|similar to|\bif i liked\b|what should i read|\bany (?:good )?\w+ "
    r"(?:picks|suggestions|recs)\b|\brecs?\b|おすすめ|オススメ|似た|みたいな|っぽい|\bosusume\b",
    re.I,
)
#: A genre named outright ("any josei bangers?", "more mystery pls"): under a chitchat label, picks are wanted.
#: Moods ("funny", "dark", "sad") are left out: "haha that's funny" is small talk.
GENRE_NAMED = re.compile(
    r"\b(?:shou?nen|seinen|shou?jo|josei|isekai|mecha|horror|romance|rom-?com|myster(?:y|ies)|comedy|comedies|fantasy|"
    r"sci-?fi|slice[- ]of[- ]life|sports manga|historical|psychological|supernatural|thriller)\b|"
    r"少年漫画|青年漫画|少女漫画|異世界|ホラー|恋愛|ミステリー|ファンタジー|ラブコメ",
    re.I,
)
#: Thanks, goodbyes and questions about the bot: small talk even when a title is named.
SMALL_TALK = re.compile(
    r"\b(?:thanks?|thank you|thx|ty|cheers|bye|goodbye|later|cya|bot|robot|human|arigat\w*)\b|ありがと|助かり|またね|さようなら|ロボット",
    re.I,
)
#: A store policy asked about (shipping, returns, payment, membership, price match, ...).
POLICY = re.compile(
    r"\bship|shipping|deliver|return|refund|exchange|payment|pay with|paypal|member|club|pre-?order policy|"
    r"price match|\bmatch(?:es|ing)? (?:it|that|the price|their|this)|\bcompetitor|coupon|promo|"
    r"送料|発送|配送|返品|返金|交換|支払|会員|クーポン", re.I,
)
#: A question about a store rule that the classifier may label order_status or chitchat ("my order is $42, can I
#: split it into installments?", 「仮想通貨で払えますか」): with no order id given, the policy answers it.
RULE_NOT_ORDER = re.compile(
    r"installments?|afterpay|klarna|manga points|\bpoints\b|pay with|payment|currency|crypto|bitcoin|"
    r"overnight|expedited|coupon|promo|membership|price match|pre-?order (?:bonus|cancel)|"
    r"支払|払え|通貨|仮想通貨|ポイント|予約|キャンセル|速達|\bshiharai\b|\byoyaku\b",
    re.I,
)
#: A price, deal or price-rule question.
PRICING = re.compile(
    r"price match|\bmatch(?:es|ing)?\b|cheaper|competitor|coupon|promo|discount|code|sale\b|bundle|"
    r"deal|price (?:drop|change)|価格|クーポン|セール|割引|安く", re.I,
)
#: Words about an order the customer placed ("my order", "shipped", "tracking", 「注文」): a title named next to
#: them is what the order holds, not a product question.
ORDER_WORDS = re.compile(
    r"\border(?:ed|s)?\b|\bpurchase[ds]?\b|\bbought\b|\bship(?:ped|ping)\b|\btrack|\bdeliver|\barriv|\bpackage\b|"
    r"\bparcel\b|注文|発送|配送|届|荷物|追跡|購入",
    re.I,
)
#: The policy_faq topics of DESIGN.md's label table (payment methods, membership, pre-order rules): a message on
#: one of them that names no title asks the rule, not about a product.
POLICY_TOPIC = re.compile(
    r"installments?|afterpay|klarna|payment|pay with|currency|crypto|bitcoin|membership|premium plan|"
    r"pre-?order(?:s|ing)? (?:bonus|cancel|fee|policy|limit)|cancel (?:a |my )?pre-?order|"
    r"予約|支払|払え|通貨|会員",
    re.I,
)
