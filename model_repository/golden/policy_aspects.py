"""The policy points asked about: the figures an answer must quote, a reference answer and the ways to ask."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PolicyAspect:
    """One answerable point of a policy section: the figures an answer must quote, and ways to ask it.

    ``groups[i][0]`` is quoted verbatim from the policy text (a unit test checks it)."""

    policy_id: str
    groups: tuple[tuple[str, ...], ...]
    reference: str
    ask: tuple[str, ...]
    clause: tuple[str, ...] = ()  # short asks joined onto another request
    ja: tuple[str, ...] = ()
    romaji: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()
    fragment: tuple[str, ...] = ()
    slang: tuple[str, ...] = ()

    @property
    def intent(self) -> str:
        return policy_intent(self.policy_id)


def policy_intent(policy_id: str) -> str:
    """The intent a question about this policy carries: returns -> return_refund, pricing -> price_deal, else policy_faq."""
    topic = policy_id.split("-")[0]
    return {"returns": "return_refund", "pricing": "price_deal"}.get(topic, "policy_faq")


BUSINESS_DAYS = "business days"
#: "<policy_id>#<point>" -> the point; ``groups[i][0]`` is quoted verbatim from ``policies.jsonl``.
ASPECTS: dict[str, PolicyAspect] = {
    # shipping ------------------------------------------------------------------------------------
    "shipping-standard#cost": PolicyAspect(
        "shipping-standard", (("$35",), ("$4.99",)),
        "Standard shipping is free on orders of $35 or more; orders under $35 pay a flat $4.99.",
        ("What do you charge for regular shipping?", "Is there a minimum spend before standard shipping becomes free?",
         "How much will delivery cost me on a small order within the US?"),
        clause=("what do you charge for shipping", "is standard shipping free"),
        ja=("通常配送の送料はいくらかかりますか？", "いくら以上買えば送料が無料になりますか"),
        romaji=("souryou muryou ni naru no wa ikura kara desu ka",),
        numbers=("My cart is at $28 right now. Will I have to pay for shipping?", "if I spend $40 do I get standard shipping for free?",
                 "Order total is $34.50 — am I going to be charged shipping on that?"),
        fragment=("free shipping minimum?", "standard shipping fee"),
        slang=("yo is shipping free or nah", "how much u charge for shipping lol")),
    "shipping-standard#time": PolicyAspect(
        "shipping-standard", ((f"5-7 {BUSINESS_DAYS}", f"5 to 7 {BUSINESS_DAYS}"),),
        "Standard shipping takes 5-7 business days within the contiguous United States.",
        ("How many days does standard shipping usually take?", "If I pick the normal shipping option, when would my books show up?"),
        clause=("how long does normal shipping take",),
        ja=("通常配送だと何日くらいで届きますか",), romaji=("futsuu haisou da to nannichi kakarimasu ka",),
        fragment=("standard delivery time?",), slang=("how long til stuff shows up w regular shipping",)),
    "shipping-standard#remote": PolicyAspect(
        "shipping-standard", ((f"7-10 {BUSINESS_DAYS}", f"7 to 10 {BUSINESS_DAYS}"),),
        "Standard shipping to Alaska, Hawaii, Puerto Rico and APO/FPO addresses takes 7-10 business days.",
        ("I live in Honolulu. How long does standard shipping take to Hawaii?", "How long does standard delivery take to an APO address?",
         "What's the shipping time to Anchorage, Alaska?"),
        fragment=("shipping to puerto rico, how long",)),
    "shipping-expedited#cost": PolicyAspect(
        "shipping-expedited", (("$9.99",), (f"2-3 {BUSINESS_DAYS}", f"2 to 3 {BUSINESS_DAYS}")),
        "Expedited shipping costs $9.99 and arrives in 2-3 business days.",
        ("What does expedited shipping cost, and how fast is it?", "I need my books sooner. What's the price of the faster shipping option?"),
        clause=("what's the price of the faster shipping",),
        ja=("速達の料金と日数を教えてください",), romaji=("sokutatsu no ryoukin wa ikura desu ka",),
        slang=("need it fast, how much is the quicker shipping??",)),
    "shipping-expedited#overnight": PolicyAspect(
        "shipping-expedited", (("$19.99",), ("1 p.m.", "1 pm", "1pm")),
        "Overnight shipping costs $19.99 and arrives the next business day when you order before 1 p.m. Eastern, Monday to Friday.",
        ("How much is overnight delivery, and what's the cutoff time to order?", "Could I get a book by tomorrow? What does next-day shipping cost?"),
        numbers=("It's 11am Eastern on a Tuesday. If I order now with overnight shipping, how much is it and when does it arrive?",),
        fragment=("overnight shipping price + cutoff?",)),
    "shipping-expedited#members": PolicyAspect(
        "shipping-expedited", (("$4.99",),),
        "Manga Club Premium members get expedited shipping for $4.99 on any order.",
        ("Do Premium members pay less for expedited shipping?", "As a Manga Club member, what do I pay for the fast shipping option?")),
    "shipping-international#cost": PolicyAspect(
        "shipping-international", (("$14.99",), ("$99",)),
        "International shipping is a flat $14.99 per order, and free on orders of $99 or more.",
        ("What's the shipping fee if I order from outside the US?", "How much do you charge to ship an order to {country}?",
         "Is international shipping ever free?"),
        clause=("do you ship to {country} and what does it cost", "what does shipping to {country} cost"),
        ja=("{country_ja}への送料はいくらですか", "海外発送の送料を教えてください"),
        romaji=("{country_romaji} made no souryou wa ikura desu ka",),
        numbers=("I'm in {country} and my cart is $85. What will shipping cost me?",
                 "Ordering from {country}, total is about $120. Do I pay international shipping on that?"),
        fragment=("intl shipping fee?",), slang=("u ship to {country}?? how much tho",)),
    "shipping-international#time": PolicyAspect(
        "shipping-international", ((f"7-21 {BUSINESS_DAYS}", f"7 to 21 {BUSINESS_DAYS}"),),
        "International delivery takes 7-21 business days depending on the destination.",
        ("How long does an order take to reach {country}?", "Roughly how many business days for delivery to {country}?"),
        clause=("how long does shipping to {country} take",),
        ja=("{country_ja}まで何日で届きますか",), romaji=("{country_romaji} made nannichi de todokimasu ka",)),
    "shipping-international#customs": PolicyAspect(
        "shipping-international", (("customs duties", "import taxes", "duties"), ("on delivery", "carrier")),
        "Customs duties and import taxes aren't included in the order total; the carrier collects them on delivery.",
        ("If I order to {country}, will I get hit with customs fees? Who pays them?",
         "Are import taxes included in the price for international orders?"),
        ja=("海外に送ってもらう場合、関税は誰が払うんですか",)),
    "shipping-international#countries": PolicyAspect(
        "shipping-international", (("42 countries",),),
        "We ship to 42 countries, including Canada, Mexico, the UK, the EU, Japan, Australia and New Zealand.",
        ("How many countries do you deliver to?", "Which countries can you ship to outside the US?")),
    "shipping-processing#time": PolicyAspect(
        "shipping-processing", ((f"1-2 {BUSINESS_DAYS}", f"1 to 2 {BUSINESS_DAYS}"),),
        "In-stock orders leave our warehouse within 1-2 business days; nothing ships on weekends or US federal holidays.",
        ("After I order, how long before it actually leaves your warehouse?", "How quickly do you dispatch in-stock orders?"),
        ja=("注文してから発送までは何日かかりますか",)),
    "shipping-processing#tracking": PolicyAspect(
        "shipping-processing", (("24 hours",),),
        "Tracking can take up to 24 hours to show the first scan after an order ships.",
        ("Generally, how soon after shipping does a tracking number start showing updates?",)),
    "shipping-processing#carriers": PolicyAspect(
        "shipping-processing", (("USPS",), ("UPS",), ("FedEx",)),
        "We ship with USPS, UPS and FedEx, and the carrier is chosen automatically.",
        ("Which delivery companies do you use?", "Can I pick the carrier, or which ones do you ship with?")),
    "shipping-holidays#christmas": PolicyAspect(
        "shipping-holidays", (("December 15",), ("December 20",)),
        "For delivery by December 24, order by December 15 with standard shipping or by December 20 with expedited shipping.",
        ("What's the last day I can order to get gifts before Christmas Eve?",
         "When do I have to order by for Christmas delivery, standard vs expedited?"),
        numbers=("Is December 18 too late to order with standard shipping for Christmas?",)),
    # payment -------------------------------------------------------------------------------------
    "payment-methods#paypal": PolicyAspect(
        "payment-methods", (("PayPal",),),
        "Yes, we accept PayPal, as well as Visa, Mastercard, American Express, Discover, Apple Pay, Google Pay and gift cards.",
        ("Is PayPal an option at checkout?", "Can I check out using my PayPal balance?"),
        ja=("PayPalで支払いできますか？",), slang=("paypal ok??",)),
    "payment-methods#crypto": PolicyAspect(
        "payment-methods", (("do not accept", "don't accept", "not accept"),),
        "We do not accept cryptocurrency, checks or cash on delivery.",
        ("Can I pay with Bitcoin or Ethereum?", "Do you take checks or cash on delivery?"),
        ja=("仮想通貨で払えますか",)),
    "payment-methods#afterpay": PolicyAspect(
        "payment-methods", (("$50",), ("Afterpay",)),
        "Orders of $50 or more can be split into four interest-free payments with Afterpay.",
        ("Is there a way to pay in installments?",),
        numbers=("My order is $42. Can I split it into installments?", "Can I pay for a $65 order in 4 payments?")),
    "payment-charging#when": PolicyAspect(
        "payment-charging", (("charged when the order ships", "when the order ships", "when it ships"),),
        "Your card is authorized when you place the order and charged when the order ships.",
        ("At what point do you actually take the money from my card?",),
        ja=("カードの代金はいつ請求されるんですか",)),
    "payment-charging#preorder": PolicyAspect(
        "payment-charging", (("only when the item ships", "when the item ships", "when it ships"),),
        "Pre-orders are charged only when the item ships, never when you place the pre-order.",
        ("If I pre-order something coming out next spring, do you charge me today?",),
        ja=("予約商品の代金はいつ引き落とされますか",)),
    "payment-gift_cards#amounts": PolicyAspect(
        "payment-gift_cards", (("$10",), ("$200",)),
        "Gift cards come in amounts from $10 to $200, never expire and have no fees.",
        ("What amounts do your gift cards come in?",),
        numbers=("Can I buy a $250 gift card for my nephew?", "What's the biggest gift card I can get, could I do $300?")),
    "payment-gift_cards#expire": PolicyAspect(
        "payment-gift_cards", (("never expire",),),
        "Our gift cards never expire and have no fees.",
        ("Is there an expiration date on your gift cards?",), ja=("ギフトカードに有効期限はありますか",)),
    "payment-declines#retry": PolicyAspect(
        "payment-declines", (("24 hours",), ("3 days",)),
        "If a payment is declined we retry it once after 24 hours and email you; unpaid orders are cancelled after 3 days.",
        ("My payment didn't go through at checkout. What happens to my order now?",)),
    "payment-declines#card_safety": PolicyAspect(
        "payment-declines", (("never ask for your full card number", "never ask"),),
        "We never ask for your full card number over chat or email; cards are stored by our PCI-DSS certified payment processor.",
        ("Is it safe to type my full card number into this chat?",)),
    "payment-tax_currency#currency": PolicyAspect(
        "payment-tax_currency", (("US dollars",),),
        "All prices are in US dollars; your bank converts the amount and may add a foreign transaction fee.",
        ("I'm paying with a Canadian card. What currency will I be charged in?",), ja=("支払いは何の通貨になりますか",)),
    # membership ----------------------------------------------------------------------------------
    "membership-plans#price": PolicyAspect(
        "membership-plans", (("$7.99",), ("$59.99",)),
        "Manga Club Premium costs $7.99 per month or $59.99 per year.",
        ("What does Manga Club Premium cost?", "How much is the yearly Premium plan compared with paying monthly?"),
        clause=("what does manga club premium cost",),
        ja=("マンガクラブプレミアムの料金はいくらですか",), romaji=("manga club no kaihi wa ikura desu ka",),
        fragment=("premium price?",), slang=("premium how much fr",)),
    "membership-plans#trial": PolicyAspect(
        "membership-plans", (("14-day", "14 days", "14 day"),),
        "New members get a 14-day free trial, one per household; it converts to the monthly plan unless you cancel before day 14.",
        ("Can I try Manga Club Premium for free first? How long is the trial?",),
        ja=("無料体験は何日間ですか",)),
    "membership-plans#student": PolicyAspect(
        "membership-plans", (("$3.99",),),
        "Students with a valid .edu email pay $3.99 per month for Manga Club Premium.",
        ("Do college students get Premium cheaper?", "I have a .edu email. Is there a student rate for Manga Club?")),
    "membership-benefits#discount": PolicyAspect(
        "membership-benefits", (("10%",),),
        "Premium members get 10% off all physical manga, plus free standard shipping with no minimum.",
        ("What discount do Premium members get on books?",), ja=("会員になると何％オフになりますか",)),
    "membership-benefits#shipping": PolicyAspect(
        "membership-benefits", (("free standard shipping",), ("$4.99",)),
        "Premium members get free standard shipping on every order with no minimum, and expedited shipping for $4.99.",
        ("Do Manga Club members still pay for shipping?",)),
    "membership-benefits#early": PolicyAspect(
        "membership-benefits", (("48 hours",),),
        "Premium members get early access to limited box sets and pre-order bonuses 48 hours before everyone else.",
        ("How early do members get access to limited box sets?",)),
    "membership-points#earn": PolicyAspect(
        "membership-points", (("1 Manga Point per dollar", "1 point per dollar", "one point per dollar"),
                              ("2 points per dollar", "two points per dollar")),
        "All customers earn 1 Manga Point per dollar spent, and Premium members earn 2 points per dollar.",
        ("How do you earn Manga Points?",),
        numbers=("If I spend $60, how many Manga Points do I get?",)),
    "membership-points#redeem": PolicyAspect(
        "membership-points", (("100 points",), ("$5",)),
        "Every 100 points can be redeemed for $5 off a future order at checkout.",
        ("What are Manga Points actually worth when I cash them in?",),
        numbers=("I have 350 Manga Points. How much money is that off my order?",)),
    "membership-points#expire": PolicyAspect(
        "membership-points", (("12 months",),),
        "Manga Points expire 12 months after they are earned.",
        ("How long do my points last before they're gone?",), ja=("マンガポイントは何ヶ月で失効しますか",)),
    "membership-cancel#pause": PolicyAspect(
        "membership-cancel", (("3 months",),),
        "Monthly Premium plans can be paused for up to 3 months, once per year.",
        ("Can I put my monthly Premium on hold for a while instead of quitting?",)),
    "membership-cancel#refund": PolicyAspect(
        "membership-cancel", (("14 days",),),
        "Annual members who cancel within 14 days of being charged get a full refund if they haven't used any member benefit.",
        ("I was charged for the annual Premium plan two days ago and haven't used it. Can I cancel the membership and get the fee back?",)),
    "membership-gifting#price": PolicyAspect(
        "membership-gifting", (("$22.99",), ("$59.99",)),
        "A gift membership costs $22.99 for 3 months or $59.99 for 12 months.",
        ("How much is it to gift someone Manga Club Premium?",)),
    # pre-orders ----------------------------------------------------------------------------------
    "preorders-how_it_works#window": PolicyAspect(
        "preorders-how_it_works", (("6 months",),),
        "You can pre-order upcoming volumes, editions and box sets up to 6 months before the release date.",
        ("How far ahead of release can I place a pre-order?",), ja=("発売の何ヶ月前から予約できますか",)),
    "preorders-how_it_works#limit": PolicyAspect(
        "preorders-how_it_works", (("5 copies",),),
        "Pre-orders are limited to 5 copies of the same item per customer.",
        ("Is there a cap on how many of one item I can pre-order?",),
        numbers=("Can I pre-order 8 copies of the same volume for my book club?",)),
    "preorders-how_it_works#digital": PolicyAspect(
        "preorders-how_it_works", (("midnight Eastern", "midnight"),),
        "Digital pre-orders arrive in your library at midnight Eastern time on the release date and are charged then.",
        ("When exactly does a digital pre-order show up in my library?",)),
    "preorders-price_guarantee#drop": PolicyAspect(
        "preorders-price_guarantee", (("lowest price",),),
        "If the price of a pre-ordered item drops before release, you're charged the lowest price automatically.",
        ("I pre-ordered a box set and now it's cheaper. Do I pay the old price?",)),
    "preorders-cancel_delays#cancel": PolicyAspect(
        "preorders-cancel_delays", (("no fee",),),
        "You can cancel a pre-order any time before it ships from Your Orders, with no fee.",
        ("Is there a penalty if I cancel a pre-order?",), ja=("予約をキャンセルすると手数料はかかりますか",)),
    "preorders-cancel_delays#delay": PolicyAspect(
        "preorders-cancel_delays", (("new date", "new release date"),),
        "If the publisher delays a release, we email you with the new date and keep your pre-order unless you cancel it.",
        ("What happens to my pre-order if the publisher pushes the release back?",)),
    "preorders-bonuses#guarantee": PolicyAspect(
        "preorders-bonuses", (("not guaranteed", "while supplies last"),),
        "Pre-order bonuses are given while supplies last, so they're not guaranteed once the bonus stock runs out.",
        ("Will I definitely get the pre-order postcard if I order late?",)),
    "preorders-shipping#threshold": PolicyAspect(
        "preorders-shipping", (("$35",),),
        "The $35 free shipping threshold is checked against the whole order, even when pre-orders ship on different days.",
        ("If my order has a pre-order and an in-stock book, does the free shipping minimum count the whole order?",)),
    # returns -------------------------------------------------------------------------------------
    "returns-window#window": PolicyAspect(
        "returns-window", (("30 days",),),
        "You can return most physical items within 30 days of delivery for a full refund, as long as they're unread and in the condition you received them.",
        ("How long after delivery can I still send a book back?", "What's the time limit for returning something I bought?"),
        clause=("how long do I have to return things",),
        ja=("商品が届いてから何日以内なら返品できますか",), romaji=("henpin kigen wa nan nichi made desu ka",),
        numbers=("My order was delivered 25 days ago. Can I still return it?", "It's been 5 weeks since my books arrived. Too late to return them?"),
        fragment=("return window?",), slang=("how long do i got to return stuff",)),
    "returns-window#fee": PolicyAspect(
        "returns-window", (("$5.99",),),
        "Returning items you no longer want costs a $5.99 label fee, deducted from the refund; you can also ship them back yourself.",
        ("Do I have to pay anything to send back a book I changed my mind about?", "How much does a prepaid return label set me back?"),
        ja=("返品ラベルの料金はいくらですか",), fragment=("return label cost?",)),
    "returns-window#boxset": PolicyAspect(
        "returns-window", (("unopened",), ("30 days",)),
        "Box sets can be returned within 30 days only if they're unopened in the original shrink wrap.",
        ("I bought a box set as a gift and they already have it. It's still sealed. Can I send it back?",)),
    "returns-window#unread": PolicyAspect(
        "returns-window", (("unread",),),
        "Books can be returned within 30 days of delivery only if they're unread and in the condition you received them.",
        ("I read the book once and it still looks new. Can I return it?",)),
    "returns-damaged#report": PolicyAspect(
        "returns-damaged", (("14 days",),),
        "Please report a damaged, misprinted or wrong item within 14 days of delivery with a photo; we'll send a free replacement and a prepaid return label.",
        ("A book in my delivery arrived with a crushed corner. What should I do?", "The wrong volume came in my package. How do I get the right one?"),
        ja=("届いた本が汚れていたのですが、どうすればいいですか",),
        numbers=("I found 3 pages missing in a book that was delivered 10 days ago. Is it too late to report it?",)),
    "returns-damaged#keep": PolicyAspect(
        "returns-damaged", (("$15",),),
        "For damaged items worth less than $15 you don't need to send them back; we'll tell you when to keep them.",
        ("Do I have to mail back a damaged book, or can I just keep it?",),
        numbers=("Do I need to send back a damaged $10 volume, or can I just keep it?",)),
    "returns-refund_timing#timing": PolicyAspect(
        "returns-refund_timing", (("5 business days",),),
        "Refunds go to your original payment method within 5 business days after the return reaches our warehouse; your bank may take another 3-10 business days.",
        ("How long after you receive my return will I get my money?",),
        ja=("返品が届いてから返金まで何日かかりますか",), romaji=("henkin made dono kurai kakarimasu ka",)),
    "returns-refund_timing#credit": PolicyAspect(
        "returns-refund_timing", (("10%",),),
        "If you choose store credit, it's added as soon as the return is scanned and includes a 10% bonus.",
        ("Is there any benefit to taking store credit instead of a refund?",)),
    "returns-exchanges#exchange": PolicyAspect(
        "returns-exchanges", (("30 days",), ("equal or lower price",)),
        "We exchange items for a different edition, volume or language of equal or lower price within 30 days of delivery.",
        ("Can I swap a book I bought for a different volume of the same series?",), ja=("別の巻と交換してもらえますか",)),
    "returns-non_returnable#digital": PolicyAspect(
        "returns-non_returnable", (("cannot be returned", "can't be returned", "not returnable", "non-returnable"),),
        "Digital editions cannot be returned once they've been downloaded or opened in the reader.",
        ("I bought an ebook by mistake and already opened it. Can I return it?",)),
    "returns-non_returnable#bonus": PolicyAspect(
        "returns-non_returnable", (("cannot be returned", "can't be returned", "not returnable", "non-returnable"),),
        "Pre-order bonus items such as posters and postcards cannot be returned.",
        ("Can I send back the poster that came as a pre-order bonus?",)),
    # pricing -------------------------------------------------------------------------------------
    "pricing-price_match#match": PolicyAspect(
        "pricing-price_match", (("14 days",),),
        "We match the current price of an identical new item sold and shipped by another major US retailer; ask within 14 days of your purchase, or before you order, with a link to the offer.",
        ("Will you match a lower price I found at another big retailer?",),
        ja=("他の店の方が安い場合、同じ値段にしてもらえますか",)),
    "pricing-price_match#marketplace": PolicyAspect(
        "pricing-price_match", (("marketplace", "third-party"),),
        "We don't price match marketplace or third-party sellers, used or digital copies, or flash sales that last under 24 hours.",
        ("A third-party seller on a marketplace site has it cheaper. Will you match that?",)),
    "pricing-price_match#used": PolicyAspect(
        "pricing-price_match", (("used",),),
        "We only match identical new items; used or digital copies aren't eligible for a price match.",
        ("Do you match the price of a used copy from another store?",)),
    "pricing-coupons#one": PolicyAspect(
        "pricing-coupons", (("one coupon code", "one code", "1 coupon"),),
        "You can use one coupon code per order, and codes can't be combined with each other.",
        ("Can I use two promo codes on the same order?",), ja=("クーポンは2枚同時に使えますか",),
        fragment=("2 coupons at once?",)),
    "pricing-coupons#member": PolicyAspect(
        "pricing-coupons", (("10%",),),
        "Coupon codes can't be combined with the 10% Manga Club member discount.",
        ("Can I put a promo code on top of my Premium member discount?",)),
    "pricing-sales#bundle": PolicyAspect(
        "pricing-sales", (("5%",), ("3 or more", "three or more")),
        "Buy 3 or more volumes of the same series in one order and save 5%; it's applied automatically at checkout.",
        ("Do I save anything if I buy several volumes of one series together?",),
        numbers=("If I get volumes 1 through 4 of {name} in one order, is there a bundle discount?",),
        ja=("同じシリーズをまとめて買うと割引になりますか",)),
    "pricing-sales#adjust": PolicyAspect(
        "pricing-sales", (("7 days",),),
        "If an item you bought goes on sale within 7 days of delivery, we refund the difference once per item when you ask through chat.",
        ("Something I just bought went on sale. Can I get the difference back?",),
        numbers=("{name} vol {vol} dropped in price 4 days after it arrived. Can I get the difference back?",)),
}


def aspects_for(intent: str, need: str = "ask") -> list[str]:
    """The aspects of ``intent`` that have phrasings of kind ``need`` (``ask``, ``clause``, ``ja``, ...)."""
    return [k for k, a in ASPECTS.items() if a.intent == intent and getattr(a, need)]
