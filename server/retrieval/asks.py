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
    r"\b(?:can|will|do|would) (?:you|u|ya) (?:price )?match\b|\bmatch (?:\w+ )?prices?\b|"
    r"送料|発送|配送|返品|返金|交換|支払|会員|クーポン", re.I,
)
#: A question about a store rule that the classifier may label order_status or chitchat ("my order is $42, can I
#: split it into installments?", 「仮想通貨で払えますか」): with no order id given, the policy answers it.
RULE_NOT_ORDER = re.compile(
    r"installments?|afterpay|klarna|manga points|\bpoints\b|pay with|payment|currency|crypto|bitcoin|"
    r"overnight|expedited|coupon|promo|membership|price match|pre-?order (?:bonus|cancel)|"
    r"\bpay (?:for )?shipping|free shipping|shipping (?:costs?|fees?|charges?)|"
    r"支払|払え|通貨|仮想通貨|ポイント|予約|キャンセル|速達|\bshiharai\b|\byoyaku\b",
    re.I,
)
#: A price, deal or price-rule question.
PRICING = re.compile(
    r"price match|\bmatch(?:es|ing)?\b|cheaper|competitor|coupon|promo|discount|code|sale\b|bundle|"
    r"deal|price (?:drop|change)|\bsave\b|together|at once|in one order|\bbulk\b|価格|クーポン|セール|割引|安く|まとめ買い", re.I,
)
#: Words about an order the customer placed ("my order", "shipped", "tracking", 「注文」): a title named next to
#: them is what the order holds, not a product question.
ORDER_WORDS = re.compile(
    r"\border(?:ed|s)?\b|\bpurchase[ds]?\b|\bbought\b|\bship(?:ped|ping)\b|\btrack|\bdeliver|\barriv|\bpackage\b|"
    r"\bparcel\b|注文|発送|配送|届|荷物|追跡|購入",
    re.I,
)
#: The policy_faq topics (payment methods, membership, pre-order rules; model_repository/datagen/intents.py): a message on
#: one of them that names no title asks the rule, not about a product.
POLICY_TOPIC = re.compile(
    r"installments?|afterpay|klarna|payment|pay with|currency|crypto|bitcoin|membership|premium plan|premium members?|"
    r"pre-?order(?:s|ing)? (?:bonus|cancel|fee|policy|limit)|cancel (?:a |my )?pre-?order|"
    r"予約|支払|払え|通貨|会員",
    re.I,
)
#: A question about the assistant itself ("are you a person or a program?", "what can you help me with?"): small
#: talk, whatever label the classifier gave it.
ABOUT_THE_BOT = re.compile(
    r"\bare you (?:a |an )?(?:real |actual )?(?:person|human|bot|robot|ai|program|machine)\b|"
    r"\bwhat (?:can|could) you (?:do|help)|\bwhat are you able to\b|\bwhat do you do\b|"
    r"\b(?:can|do) you (?:speak|understand|read) (?:japanese|english|spanish)\b|"
    r"日本語(?:でも|で)(?:大丈夫|いい|平気)|何ができ|ロボットですか|人間ですか|ボットですか",
    re.I,
)
#: A request for the store's item: stock, price, availability, "do u have", "pls" -- not fan talk about a title
#: ("Vagabond volume 12 absolutely broke me", "rereading Horimiya this weekend").
ASKS_FOR_ITEM = re.compile(
    r"\?|\b(?:do|does|d) (?:you|u|ya) (?:have|got|sell|carry|stock)|\bin stock\b|\bstock\b|\bavailable\b|\bprice\b|"
    r"how much|\bcost|\bbuy\b|\bpls\b|\bplz\b|\bplease\b|\bwant\b|\bneed\b|\bgot any\b|"
    r"\bka\b|arimasu|atsukatte|ありますか|ありますか|ますか|置いて|取り扱|在庫|買い|欲しい|ください",
    re.I,
)
#: Asking for one item, as opposed to picks ("looking for X", "do you carry X", "X ari masu ka").
ONE_ITEM_ASKED = re.compile(
    r"\blooking for\b|\bsearching for\b|\b(?:you|u|ya|y'?all) (?:still |even )?(?:have|got|carry|sell|stock)\b|"
    r"\bgot any\b|\bhave (?:you|u) got\b|\bany copies\b|\bcarry it\b|\bsell it\b|在庫|"
    r"\bin stock\b|\bavailable\b|\bari ?masu ka\b|ありますか|売っていますか|\bprice\b|how much|\bbuy\b|\border\b",
    re.I,
)
#: "something like X" / "similar to X": picks wanted even though a title is named.
SIMILAR_TO = re.compile(r"\bsomething (?:like|similar)|similar to|\bif i liked\b|\blike\b.{0,40}\b(?:recs?|recommend\w*)|似た|みたいな|っぽい", re.I)
#: The price of an item asked for.
PRICE_ASKED = re.compile(r"how much|\bprice|\bcosts?\b|\bcharge\b|\bpay for\b|going for|いくら|値段|価格", re.I)


def picks_asked(text: str, named: bool) -> bool:
    """Recommendations asked for: a recommend word, and -- when a title is named -- "something like" it
    ("is Berserk recommended for teens?" asks about Berserk)."""
    return bool(RECOMMEND.search(text)) and (not named or bool(SIMILAR_TO.search(text)))
_SOMEONE = r"(?:neighbou?r|roommate|room-mate|flatmate|friend|brother|sister|wife|husband|partner|mom|mum|dad|boss|coworker|co-worker|colleague|ex)"
#: Somebody else's order asked about ("I'm not the account holder for MA-…", "it's my roommate's order"): the
#: service has no customer identity on this path, so such a request gets no order details at all.
SOMEONE_ELSES_ORDER = re.compile(
    r"\bnot (?:the )?account holder\b|\bnot my order\b|\bisn'?t (?:my order|mine)\b|\b(?:some|any)(?:one|body) else'?s\b|"
    rf"\bmy {_SOMEONE}'?s? (?:order|package|parcel)\b|\bit'?s my {_SOMEONE}'?s\b|\bmy {_SOMEONE} ordered\b|"
    r"\bwho placed\b|\bperson who placed\b|\bfound a receipt\b|\bother (?:people|customers)'?s? orders?\b|"
    r"\bevery order for\b|\ball (?:the )?orders (?:for|of)\b|他人の注文|人の注文",
    re.I,
)
#: A return, exchange or refund asked for ("can i swap my horimiya 2 for a different volume").
RETURN_ASK = re.compile(
    r"\b(?:swap|exchange|return|refund)\b|\bsend\b.{0,60}\bback\b|返品|交換|返金|\bhenpin\b|\bkoukan\b", re.I
)
#: Damage or a wrong item reported ("arrived with a torn cover", "you sent me vol 6 instead of vol 5").
DAMAGE = re.compile(
    r"\bbroken|torn|ripped|crushed|bent|misprint|\bdamage[ds]?\b|cracked|dented|scratched|stained|loose pages?|"
    r"upside down|pages? missing|missing pages?|instead of|wrong (?:book|volume|item|one)|defect|"
    r"破損|破れ|折れ|汚れ|落丁|乱丁|間違",
    re.I,
)
