"""Generated intent-classification data: customer messages labelled with the eight ``INTENT_LABELS``.

Messages come from many hand-written templates per label, slot-filled from the catalog and the orders
(titles, series, authors, volumes, prices, order ids, genres) plus a pool of real series names, then varied
with greetings/thanks, slang, emoji, Japanese mixed with English, rambling prefixes, and a noise function
(typos, lowercasing, missing punctuation, ALL CAPS). Some messages combine two requests.

Splits hold out whole templates: every template (and every component of a combined message) belongs to
exactly one of train / validation / test, so the validation and test scores measure generalisation to
phrasings the classifier never saw rather than memorised sentence frames.

Labelling rules (applied consistently by the templates; the hand-written fixture follows them too)
-------------------------------------------------------------------------------------------------
* ``product_question``: facts about a title or edition — stock/availability, number of volumes, whether
  a series is finished, release dates of a specific volume (including "can I pre-order vol 12 of X"),
  format, page count, language/translation, age rating and content, author/mangaka, publisher, what a
  volume contains, what the reviews say.
* ``recommendation``: asking what to read or buy — "something like X", genre/mood requests, gift ideas,
  "is X worth reading / good / peak or mid", "X or Y?", age-appropriate picks without a specific title.
* ``order_status``: an existing order's whereabouts — where is my order, tracking, delivery date, shipped
  yet, stuck in transit, "says delivered but I don't have it", split shipments, changing the address of an
  order that has not shipped.
* ``return_refund``: everything about sending something back or getting money back — return/refund/
  exchange requests, damaged, misprinted, wrong or duplicate items, refund status, a double charge to be
  refunded, AND questions about the return policy itself (return window, who pays return shipping, can
  opened box sets be returned). The taxonomy puts returns here, not in ``policy_faq``.
* ``policy_faq``: store rules that are not about returns — shipping options, costs, speed and
  destinations ("how long does shipping take", "how much is express shipping"), payment methods and
  charging, declined cards, tax, Manga Club membership (price, perks, points, cancelling the membership),
  how pre-orders work in general (when charged, cancelling a pre-order, bonuses).
* ``price_deal``: the price of an item, discounts, coupons/promo codes (including a code that fails),
  sales, bundles, price matching, "is it cheaper as digital". Shipping cost is ``policy_faq``; the
  membership fee is ``policy_faq``; "how much is <item>" is ``price_deal``; "is <item> in stock" is
  ``product_question``.
* ``chitchat``: greetings, thanks, goodbyes, small talk, jokes, questions about the assistant itself
  ("are you a bot?"), reactions ("lol ok"). Nothing actionable.
* ``escalation``: explicitly asks for a human/agent/manager/phone call, formal complaints and threats
  (chargeback, lawyer, BBB, "worst service"), legal/safety/security concerns (fraud, account takeover,
  unauthorised charges, counterfeit goods, injury, privacy/data deletion). An angry complaint that also
  asks for a refund is ``escalation`` when it demands a person or threatens action, else ``return_refund``.

Multi-intent messages take the label of the most urgent actionable request:
``escalation`` > ``return_refund`` > ``order_status`` > any other request; chitchat (a greeting, thanks)
never wins over a request ("thanks! also where's my order MA-12345678" -> ``order_status``).
"""

from __future__ import annotations

import random
import re
from typing import Callable, Sequence

from model_repository.datagen.catalog import Series
from model_repository.datagen.real_series import japanese_names
from server.intents import INTENT_LABELS

SPLITS = ("train", "validation", "test")
SPLIT_FRACTIONS = {"validation": 0.15, "test": 0.15}  # the rest of each label's templates is train
TARGET_PER_LABEL = {label: 820 for label in INTENT_LABELS} | {"chitchat": 700, "escalation": 700}
COMPOSITE_SHARE = 0.14
# Which lower-priority requests may be appended to a primary one (see "Multi-intent" in the docstring).
COMPOSITE_SECONDARIES = {
    "escalation": ("return_refund", "order_status", "product_question", "price_deal"),
    "return_refund": ("order_status", "product_question", "price_deal", "policy_faq", "recommendation"),
    "order_status": ("product_question", "price_deal", "policy_faq", "recommendation"),
}

# --------------------------------------------------------------------------------------------- templates
TEMPLATES: dict[str, tuple[str, ...]] = {
    "product_question": (
        "is {title} in stock?",
        "do you have vol {vol} of {series} in stock",
        "vol {vol} in stock?",
        "How many volumes does {series} have?",
        "is {series} finished or still ongoing?",
        "When does volume {vol} of {series} come out?",
        "Is there an English translation of {series} yet, or is it only in Japanese?",
        "what's the age rating on {series}? my kid is {age}",
        "Who is the mangaka behind {series}?",
        "who draws {series}",
        "is the {series} {fmt} in {lang}?",
        "how many pages is the {series} omnibus",
        "does the {series} box set include all {n} volumes or just the first arc?",
        "is {title} the physical tankobon or the digital version?",
        "which volume of {series} starts the {arc} arc?",
        "kono manga wa zaiko arimasu ka? {series} vol {vol}",
        "do u guys carry {series} in {lang}",
        "is {series} vol {vol} back in stock yet? it said sold out last week",
        "Is the {series} {fmt} hardcover or paperback?",
        "release date for {series} vol {vol}?",
        "does {title} have any color pages",
        "is {series} a shonen or a seinen?",
        "is {series} simulpub or do the english volumes come out way later",
        "Is {series} complete in {lang}? I don't want to start something that stopped at vol {vol}.",
        "which publisher does the english release of {series}",
        "Does vol {vol} of {series} include chapter {chap}?",
        "are the {series} omnibus books the same height as the regular tankobon? want them to match on my shelf",
        "is the {fmt} version of {series} censored?",
        "does {series} have furigana? trying to learn japanese lol",
        "{series} {fmt} - how many volumes are in it",
        "I'm looking at {title}. What's the difference between that and the omnibus edition?",
        "when is {series} vol {vol} getting restocked",
        "is the {series} box set still available or did it sell out",
        "Can I read the digital edition of {series} on my tablet?",
        "Can you tell me what {title} is about?",
        "what happens in vol {vol} of {series}? no spoilers, just the basic premise",
        "is {series} on hiatus? the last volume I saw was {vol}",
        "is this the volume where {char} shows up? {series} vol {vol}",
        "Does {series} vol {vol} come with the bonus postcard or was that only the first print?",
        "what language is {title} in",
        "how graphic is {series}? like is there a lot of gore",
        "stock check: {series} {vol} through {vol2}",
        "Do you sell {series} in {lang}? my cousin only reads {lang}",
        "how many copies of {title} do you have left",
        "Is vol {vol} the final volume of {series}?",
        "any news on a deluxe edition of {series}?",
        "mangaka of {series}? and is it finished",
        "I read {series} as a scanlation years ago, is the official {lang} translation complete now?",
        "{series} vol {vol}: in stock or only pre-order?",
        "what are the reviews saying about {title}?",
        "Is {title} the new translation or the old one?",
        "sumimasen, {series} no {vol} kan wa arimasu ka?",
        "Is {series} by {author} the same one that ran in a weekly magazine?",
        "is {series} a manga or a manhwa? the art looks kinda korean",
        "what's the ISBN for {title}",
        "Are the {series} volumes numbered on the spine?",
        "can I pre-order {series} vol {vol} yet or is it not announced",
        "Hi, I need the dimensions of the {series} box set, does it fit a standard bookshelf?",
        "did {author} write anything else besides {series}? is it in stock",
        "how long is {series}, like how many chapters total",
        "{series} - is it right to left or flipped?",
        "what size are the {series} books? need to know if they fit my shelf",
        "is {title} still available to buy",
        "how old do you have to be for {series}, what's it rated",
        "does {series} have mature content? it's for my {age} year old",
        "Is {series} out in paperback or only digital?",
        "{title} - hardcover or softcover?",
        "any idea when the next {series} volume drops in english?",
        "do you have the first {series} omnibus in stock",
        "is vol {vol} of {series} available in {lang}",
        "which edition of {series} has the bigger trim size",
        "was {series} cancelled or is it still running",
        "how many volumes of {series} are out in english so far",
        # availability before release: a question about the title, not about an order (that is order_status)
        "is {series} vol {vol} up for pre-order yet?",
        "when do pre-orders open for {title}",
        "has vol {vol} of {series} been announced in {lang} yet? want to reserve it",
        "can i reserve a copy of {title} before it comes out",
        "{series} vol {vol} preorder?? is it even listed on your site yet",
        "is the next {series} volume available to pre-order or do I have to wait for the release",
        # format and edition
        "what format is {title}, tankobon or omnibus?",
        "is the {series} box set hardback",
        "does {title} come with a dust jacket",
        "softcover or hardback for the {series} {fmt}?",
        "is the {series} {fmt} the deluxe edition or the regular one",
        "paperback or hardcover? {title}",
        "which edition is this {series} vol {vol}, the 2-in-1 or the single volume?",
        # finished or ongoing, how far the translation got
        "has {series} finished its run in {lang}?",
        "is the {lang} release of {series} caught up with japan",
        "are all volumes of {series} translated or is it stuck at vol {vol}",
        "before I commit to vol 1, is {series} completed or still coming out?",
        "did {series} ever get an ending or is it abandoned",
        # Japanese mixed in
        "{series} no saishinkan wa itsu hatsubai desu ka?",
        "{series} wa kanketsu shimashita ka?",
        "{series} no eigoban wa arimasu ka",
        "{title} zaiko aru?",
        "{series} {vol}-kan, mada arimasu?",
        # stock and basic facts, phrased loosely
        "any copies of {series} vol {vol} left?",
        "yo is {series} {vol} available or sold out",
        "who publishes {series} in {lang}",
        "page count for {title}?",
        "does {title} ship as a physical book or is it a download",
        # one fact about one book ({attr}: ISBN, page count, trim size ...); "the price for" is price_deal
        "what's the {attr} for {title}?",
        "{attr} of {series} vol {vol}?",
        "need the {attr} of {title} pls",
        "do you know the {attr} on {series} vol {vol}",
        "{title}: {attr}?",
        "can you check the {attr} for {series} {vol}",
        # which format ({fmtpair}: paperback or hardcover, print or digital ...)
        "{fmtpair}? {title}",
        "is {title} {fmtpair}",
        "quick q, {fmtpair} for {series} vol {vol}",
        "{series} {fmt}: {fmtpair}?",
    ),
    "recommendation": (
        "can you recommend something like {series}?",
        "I loved {series}, what should I read next?",
        "looking for a good {genre} manga, any suggestions?",
        "need a gift for my {rel} who's really into {genre}, budget around {price}",
        "what's a good first manga for a {age} year old who has never read one?",
        "give me something dark and psychological like {series} but shorter",
        "any completed {genre} series under {n} volumes?",
        "is {series} worth reading?",
        "{series}: peak or mid?",
        "something wholesome to read on a rainy day?",
        "what's the best isekai that isn't just a power fantasy",
        "just finished {series} and i'm emotionally destroyed, recommend me something to heal",
        "top 5 {genre} manga for a beginner?",
        "Which should I start first, {series} or {series2}?",
        "suggest a manga with a strong female lead",
        "what should I get my boyfriend who only watches anime and has never read manga",
        "Recommend a slow-burn {genre} romance that isn't too spicy",
        "what's everyone reading right now? anything trending?",
        "looking for a horror manga that's actually scary, not just gore",
        "would I like {series} if I liked {series2}?",
        "I want something like {series} but with less fanservice",
        "any good sports manga besides the obvious ones?",
        "any mangaka with a style similar to {author}?",
        "what's the most goated {genre} manga of all time in your opinion",
        "can u suggest a short one-volume manga to read on a long flight",
        "I'm getting back into manga after like 10 years, where do I even start",
        "what's a {genre} manga with gorgeous art",
        "recommend me a mecha series that isn't Gundam",
        "any manga in {lang} for my {rel} who's learning {lang}? something easy",
        "looking for cozy slice of life vibes, like cooking or cafes",
        "Ideas for a {holiday} gift for a {age}-year-old who loves {genre}?",
        "what's something like {series} where the MC is overpowered",
        "ngl {series} was mid, what's actually good in {genre}",
        "Which {genre} series would you call a must-read?",
        "hidden gem recs? I've already read all the big shonen",
        "what should I read while I wait for {series} vol {vol}?",
        "what's the best manga box set to give as a present?",
        "something funny please, I need a laugh",
        "i want to cry. recommend me the saddest manga you know",
        "are there any manga about {topic}?",
        "I like everything by {author}, who else should I check out?",
        "your top pick for a {genre} starter series?",
        "osusume no manga wa nan desu ka? I like {genre}",
        "my {rel} devoured {series}, what else would they enjoy?",
        "drop your favorite underrated {genre} titles",
        "what manga would work well for a book club discussion?",
        "{series} or {series2} to binge this weekend?",
        "finished the {series} anime, should I read the manga or try something new?",
        "seinen with mature storytelling like {series}, go",
        "any new {genre} series from this year that are worth following?",
        "is {series} good or overhyped? thinking of buying the box set",
        "I need a manga where the villain wins. anything?",
        "what would you recommend to someone who only reads American comics",
        "a manga my {age} year old and I could read together?",
        "looking for something with found family vibes and no romance",
        "help me find my next obsession, I like {genre} and {topic}",
        "what manga would you recommend for someone who loves {topic}?",
        "I need a new series to start, something {genre} with a good plot",
        "recommend me something similar to {series} pls",
        "what do you think I'd like if my favorites are {series} and {series2}",
        "looking for a gift, my {rel} likes {genre} and {topic}, any ideas?",
        "can you suggest a completed series? nothing too long",
        "what's good to read if I liked the vibe of {series}",
        "got any recs for {genre}? I'm open to anything",
        "just finished {series}, what should I pick up next?",
        "finished {series} vol {vol} and need something similar asap",
        "I can't stop thinking about {series}, got anything with the same vibe?",
        "rereading {series} again, I need something new like it",
        "what's peak {genre} right now",
        "which {genre} manga should I start with? total newbie",
        "recommend a manga for a {age} year old who loved {series}",
        "give me 3 series like {series}",
        "anything similar to {author}'s work but more lighthearted?",
        "is {series} worth it or should I read something else first",
        "bored of {genre}, suggest something completely different",
        "what should I buy next? I've read {series} and {series2}",
    ),
    "order_status": (
        "where is my order {order_id}?",
        "can you check the status of {order_id}",
        "tracking for {order_id} hasn't updated in {days} days",
        "my order still hasn't arrived and it's been {days} days",
        "When will my manga arrive?",
        "order {order_id} says shipped but there's no tracking number",
        "is my order out for delivery yet?",
        "sumimasen, where is my order {order_id}",
        "{order_id} status?",
        "has my pre-order of {series} vol {vol} shipped yet?",
        "it says delivered but i don't see it anywhere. checked with neighbors too",
        "what's the ETA on {order_id}",
        "I ordered {title} on {month} {day} and I still haven't gotten a shipping confirmation",
        "which carrier is delivering {order_id}?",
        "can you give me the tracking number for my last order",
        "{carrier} tracking says exception for {order_id}, what does that mean",
        "did my order go out today?",
        "I need my order by Friday for a birthday, will it make it? it's {order_id}",
        "still waiting on {order_id}",
        "my package has been stuck in transit for {days} days",
        "where's my stuff",
        "hey, just checking if {order_id} has been processed yet",
        "can I change the delivery address on {order_id}? it hasn't shipped yet",
        "The tracking link in my email for {order_id} is broken, can you tell me where it is?",
        "I placed an order yesterday and it still says processing, is that normal?",
        "has {order_id} left the warehouse",
        "Order number {order_id} - expected delivery date please",
        "my box set order hasn't moved since it left {city}",
        "order status pls",
        "did you guys lose my package? {order_id}",
        "I got an email that my order was delayed, so when is it coming now?",
        "when does order {order_id} arrive? the tracking shows nothing",
        "how do I track my order?",
        "Could you confirm {order_id} shipped to my new address and not the old one?",
        "It's been a week and {title} still hasn't shipped. any update?",
        "is {order_id} going to arrive before {holiday}?",
        "I only got part of {order_id}, is the rest coming in a separate package?",
        "wya {order_id} lol",
        "any update on my delivery? order {order_id}",
        "why is my order taking so long to ship",
        "what day will {order_id} get here",
        "my order number is {order_id}, can you tell me where it is",
        "tracking says my package went to the wrong city?? {order_id}",
        "I need the tracking info for the order I placed on {month} {day}",
        "did the {series} box set I ordered ship yet",
        "order {order_id} hasn't come yet, it was supposed to be here {weekday}",
        "is there any way to see where my package is? I ordered vol {vol} of {series}",
        "{order_id} no haisou joukyou wo oshiete kudasai",
        "eta on my manga haul?",
        "I'm in {country}, how far along is my international order {order_id}?",
        "when is my pre-order going to ship? it's past the release date already",
        "has the driver picked up {order_id}? it's been 'label created' for {days} days",
        "Is my order going to come in one box or several? {order_id}",
        "My tracking number isn't showing anything on the {carrier} site",
        "when should I expect {title}? I ordered it {days} days ago",
        "when will {order_id} be delivered",
        "has my package shipped yet? order number {order_id}",
        "where is my package? it was supposed to come {weekday}",
        "can you look up my order {order_id}",
        "I'm still waiting for my delivery, what's going on with it",
        "whats the tracking on my order from {month} {day}",
        "my order shows 'in transit' since {weekday}, when does it arrive",
        "is {order_id} out for delivery today",
        "my package hasn't moved in a week, is it lost? {order_id}",
        "tracking shows {order_id} went to {city} instead of here, is it still coming?",
        "{order_id} has said 'label created' since {weekday}, did it actually ship",
        "the carrier says delivery exception on {order_id}, what does that mean for my books",
        "any update on {order_id}? tracking hasn't changed in days",
        "did {order_id} get lost in the mail or is it just slow",
    ),
    "return_refund": (
        "I want to return {title}",
        "how do I return a manga I bought?",
        "vol {vol} of {series} arrived damaged, the cover is bent",
        "you sent me the wrong volume, I ordered vol {vol} and got vol {vol2}",
        "can I get a refund for order {order_id}?",
        "refund pls",
        "where is my refund? I mailed the return back {days} days ago",
        "what's your return policy?",
        "how many days do I have to return something",
        "can i exchange the {fmt} for the omnibus instead",
        "the {series} box set came with the shrink wrap torn and vol {vol} missing",
        "pages {n} to {n2} are misprinted in {title}, can I get a replacement?",
        "I was charged twice for {order_id}, please refund one of the charges",
        "bought the {lang} edition by accident, can I swap it for the English one?",
        "I'd like my money back for {title}, it's not what I expected",
        "can I return an opened box set?",
        "Do I have to pay for return shipping?",
        "the spine on vol {vol} is cracked straight out of the box",
        "got two copies of {title} in my order, how do I send one back",
        "How long does a refund take to show up on my card?",
        "can I get a return label for {order_id}?",
        "I accidentally ordered {series} vol {vol} twice, can I return one?",
        "can I return a digital manga I bought by mistake",
        "the package got rained on and all {n} books are soaked. what now",
        "my {rel} already has this one, can I exchange {title} for a different volume?",
        "is the return window 30 days from delivery or from when I ordered?",
        "I returned {title} two weeks ago and haven't heard anything back",
        "can I get store credit instead of a refund",
        "missing pages in vol {vol} :( I want a new copy",
        "damaged item in order {order_id}, I have photos",
        "henpin shitai desu. {title}, how do I return it?",
        "Can I return a gift without the receipt?",
        "wrong item received!!! I ordered {series} and got something completely different",
        "I want a refund, the book reeks of cigarette smoke",
        "how do i start a return on the website",
        "return {title} please, I changed my mind",
        "my refund was less than what I paid, why?",
        "the box arrived crushed and every volume has dinged corners, can you send replacements",
        "are sale items returnable?",
        "the {fmt} I received has a printing error, text is cut off on several pages",
        "i want to send back order {order_id}, it came too late and i don't need it anymore",
        "please exchange vol {vol} for an undamaged copy",
        "do you refund the shipping cost when I return something?",
        "I never got my refund for {order_id}",
        "can I return just one volume out of the {series} box set",
        "I got the censored printing instead of the uncensored one I ordered, want to exchange it",
        "how do I get reimbursed for a damaged {fmt}?",
        "half my order was missing and the other half was damaged, I want a full refund",
        "can I still return it if I already read it once? it's in perfect condition",
        "what's the status of my refund for {order_id}",
        "the cover of {title} is scratched, is that covered for a replacement?",
        "I returned a book but got store credit and I wanted the money on my card",
        "received {series} vol {vol2} instead of vol {vol}. how do I swap it",
        "my order {order_id} came and the books are water damaged, refund or replacement?",
        "It's been {days} days since you got my return, still no refund",
        "bound upside down?? vol {vol} of {series} has pages printed upside down, exchange please",
        "how do I return something that came damaged",
        "can you refund me for {title}? it arrived with a torn cover",
        "I want to exchange {title} for the {fmt}",
        "how do returns work on your site",
        "do you accept returns on box sets",
        "I need a refund on order {order_id}",
        "got a defective copy of {title}, what are my options",
        "the wrong edition came, I ordered the {lang} one",
    ),
    "policy_faq": (
        "how long does shipping take?",
        "do you offer free shipping?",
        "what's the minimum order for free shipping",
        "do you ship to {country}?",
        "how much is express shipping?",
        "what payment methods do you accept?",
        "can I pay with PayPal?",
        "do you take apple pay or google pay",
        "do you accept crypto",
        "how does the Manga Club membership work?",
        "how much does Manga Club Premium cost per month",
        "what are the perks of being a premium member",
        "how do I cancel my membership",
        "when do I get charged for a pre-order?",
        "can I cancel a pre-order?",
        "what happens if the price drops after I pre-order something?",
        "is there a limit on how many copies I can pre-order",
        "do you ship to PO boxes?",
        "will I have to pay customs fees on an international order",
        "can I split a payment between a gift card and my credit card?",
        "do your gift cards expire?",
        "how do Manga Points work?",
        "do you ship on weekends?",
        "is overnight delivery available?",
        "is my credit card info stored securely on your site?",
        "does shipping cost more for heavy box sets?",
        "which carriers do you ship with?",
        "do you have in-store pickup",
        "do pre-orders arrive on release day?",
        "is there a student discount on the membership",
        "will I be charged sales tax?",
        "how long does it take to process an order before it ships out",
        "international shipping cost?",
        "can I pause my membership instead of cancelling it",
        "does premium include faster shipping?",
        "what happens to my pre-order if the release date is delayed?",
        "is there an annual membership plan?",
        "can I pay in installments, like afterpay?",
        "haisou ryou wa ikura desu ka? shipping to Japan",
        "shipping to Canada?? how long does it take",
        "are pre-order bonuses guaranteed?",
        "why was my card declined at checkout?",
        "can I get free shipping without being a member",
        "do you deliver to APO/FPO military addresses",
        "is there a fee to join the membership?",
        "how do I redeem my points",
        "how do you pack books for shipping? I'm worried about dented corners",
        "do you charge my card when I pre-order or when it ships",
        "shipping options?",
        "what's the free trial for Manga Club?",
        "can I gift someone a membership?",
        "do points expire?",
        "do you ship to Hawaii and how long does it take",
        "Can I use a gift card to pay for a pre-order?",
        "what currency are your prices in? I'm paying with a European card",
        "if I order an in-stock book and a pre-order together, do they ship together?",
        "what's the cutoff to order for christmas delivery",
        "how much does shipping cost?",
        "what's the shipping fee on small orders",
        "how long does delivery take to {country}",
        "what cards do you accept",
        "can I pay with a debit card?",
        "what do I get with the membership",
        "how does pre-ordering work on your site",
        "when do you charge for pre-orders, at checkout or when it ships?",
        "is there a monthly fee for premium",
        "how many copies of one book can I pre-order",
        "is same-day or overnight shipping an option?",
        "is express delivery available to {country}?",
        "how does the Manga Club free trial work",
        "is there a trial period for the membership",
        "do you take PayPal or just cards?",
        "do you ship to PO boxes",
        "what are the Manga Club perks exactly",
        "is delivery available on weekends",
    ),
    "price_deal": (
        "how much is {title}?",
        "price of {series} vol {vol}?",
        "any discounts on the {series} box set?",
        "do you have any coupon codes?",
        "is the code {code} still valid?",
        "do you price match {competitor}?",
        "when is your next sale?",
        "is there a black friday sale on manga this year",
        "how much for the whole {series} set",
        "is {title} cheaper as a digital copy?",
        "any bundle deals if I buy vol 1 to {vol}?",
        "why did the price of {title} go up?",
        "is there a student discount on books",
        "is the buy 2 get 1 free deal still going?",
        "how much does the {series} omnibus cost",
        "{series} vol {vol} price pls",
        "I saw {title} for {price} at {competitor}, can you match that?",
        "is it {pct}% off everything this weekend?",
        "my promo code {code} isn't working at checkout",
        "are there any deals on {genre} manga this month",
        "what's the cheapest way to get all of {series}?",
        "is the box set a better deal than buying the volumes one by one?",
        "do you have a clearance or bargain section?",
        "is there a first order discount?",
        "how much would volumes {vol} through {vol2} of {series} cost in total",
        "ikura desu ka? {title}",
        "{price} for one volume?? is that right",
        "will {series} go on sale anytime soon?",
        "can I use a coupon on a pre-order?",
        "do you give a discount for buying a whole series at once?",
        "do you have price drop alerts?",
        "is the {fmt} edition of {series} on sale right now",
        "the price went up between adding {title} to my cart and checking out, can I get the old price?",
        "are the digital volumes cheaper than print?",
        "what does the {lang} edition of {title} cost",
        "got a coupon in an email but I deleted it, can you resend the code?",
        "what's the lowest you can do on the {series} box set?",
        "any promo codes for new customers?",
        "how much are the {genre} box sets going for",
        "is {price} a good price for {title} or should I wait for it to drop",
        "birthday discount??",
        "any flash sales going on rn",
        "{competitor} has {series} cheaper, can you beat their price?",
        "How much do I save getting the omnibus instead of 3 separate volumes?",
        "what's the price on the {lang} version of {series} vol {vol}",
        "cost of {series} {vol}-{vol2}?",
        "Can I stack {pct}% off with my member discount?",
        "are there holiday deals on box sets?",
        "how much is the {series} {fmt}",
        "is {code} a real code or a scam? it says {pct}% off",
        "do you have any sales on older volumes of {series}?",
        "I'm on a budget of {price}, how many volumes of {series} can I get for that?",
        "will the {series} box set be discounted for {holiday}?",
        "price check on {title} please",
        "is there a loyalty discount for buying a lot of manga every month?",
        "how much does {title} cost",
        "how much are the {series} volumes",
        "what's the price of the {series} box set",
        "how much for {series} vol {vol} in {fmt}",
        "{title} price?",
        "{series} no box set wa ikura desu ka",
        "is there any sale on {series} right now",
        "do you have any discounts for {holiday}?",
        "any coupon I can use on {title}?",
        "how much is it for vol {vol}?",
        "price for the {lang} edition?",
        "is there a cheaper version of {title}",
        "{competitor} has {title} for {price}, will you price match?",
        "found {series} vol {vol} cheaper at {competitor} ({price}), can you beat it",
        "any {holiday} sale coming up?",
        "are you doing discounts for {holiday}",
        "is there a bundle price if I buy {series} 1-{n2}",
        "how much would the whole {series} set cost me",
        "does the {code} code work on box sets",
        "is {title} going on sale soon",
    ),
    "chitchat": (
        "hi",
        "hello!",
        "hey there",
        "good morning :)",
        "thanks!",
        "thank you so much!!",
        "arigatou!",
        "bye!",
        "see you later",
        "how are you doing today?",
        "what's up",
        "are you a bot?",
        "are you a real person or an AI?",
        "tell me a joke",
        "tell me a manga pun lol",
        "lol",
        "haha you're funny",
        "you're the best",
        "ok cool, thanks",
        "what's your favorite manga?",
        "do you read manga yourself?",
        "who made you?",
        "I'm so bored today",
        "happy friday!",
        "good night!",
        "konnichiwa!",
        "ohayo~",
        "yo",
        "nice, that helps a lot",
        "ok",
        "nvm, I figured it out",
        "that's all, thanks",
        "omg you're so helpful",
        "what's your name?",
        "do you like anime?",
        "do you ever sleep lol",
        "I love this store so much",
        "just wanted to say the {series} volumes look amazing on my shelf",
        "testing testing 123",
        "sup",
        "have a great day!",
        "did you watch the new {series} anime episode? so good",
        "who's your favorite character in {series}?",
        "can you speak japanese?",
        "ok bye",
        "thx",
        "you rock",
        "merry christmas!",
        "I'm new here :)",
        "goodbye and thanks for the help",
        "otsukaresama desu",
        "what's your favorite anime?",
        "I just finished {series} and I can't stop thinking about {char}",
        "mata ne!",
        "hello? anyone there?",
        "you're actually pretty smart for a bot",
        "hahaha ok",
        "good afternoon!",
        "later!",
        "how's it going?",
        "see ya, have a good one",
        "are you ChatGPT?",
        "I love {series} so much omg",
        "{char} is my favorite character ever",
        "what's your favorite {genre} manga?",
        "do you have a favorite volume of {series}?",
        "you're cute lol",
        "I'm just looking around",
        "ok thank you, have a nice day",
        "lmao same",
        "what can you do?",
        "just finished {series} vol {vol}, what a ride 😭",
        "{series} vol {vol} had me screaming at 2am lol",
        "rereading {series} for the third time, no regrets",
        "the ending of {series} wrecked me ngl",
        "{char} deserved better tbh",
        "ok {series} is peak, that's all I wanted to say",
        "my {rel} just got into {series} and won't stop talking about it haha",
        "finally caught up on {series}!! so hyped",
        "{author} is a genius honestly",
        "my shelf is full of {series} now lol, send help",
        "can't believe {char} did that in vol {vol} omg",
        "currently reading {series} on my lunch break, living my best life",
        "ugh the wait for the next {series} volume is killing me",
        "sorry, wrong chat lol",
        "brb",
        "that's hilarious 😂",
        "no worries, take your time",
        "i'm back!",
        "my cat just sat on my {series} volumes lmao",
        "sugoi! thanks",
        "good evening, hope you're well",
        "just saying hi 👋",
        "do you get tired of people asking about {series}?",
        "what anime are you watching this season?",
        "{series} really is goated isn't it",
        "i stayed up all night reading {series} and regret nothing",
        "{char} and {char} are the best duo, change my mind",
        "nothing, just browsing",
        "just testing if this chat works",
        "hello? is this thing on",
        "ohayo gozaimasu!",
        "oyasumi, going to bed now",
        "konbanwa~ just saying hi",
        "do you even like manga?",
        "who's your favourite character ever",
        "honestly {char} carried that whole arc",
        "that {series} finale had me crying for an hour",
        "{char} is the goat, no debate",
        "ok that's all, bye!",
        "lol you're pretty helpful for a bot",
    ),
    "escalation": (
        "I want to talk to a human",
        "let me speak to a manager",
        "agent",
        "representative please",
        "this is the third damaged order in a row, get me a real person",
        "I'm going to file a chargeback with my bank",
        "I will be contacting my lawyer about this",
        "someone used my account to place orders I didn't make",
        "I want to file a formal complaint",
        "your bot is useless, connect me to customer support",
        "The book I received has extremely graphic content and was marketed for kids, I need to report this",
        "your delivery driver threw the package at my door and broke my window, who do I talk to",
        "I was charged for a membership I never signed up for, this is fraud",
        "I've emailed support 4 times and nobody answers",
        "can I call someone? what's your phone number",
        "I want to report a counterfeit copy sold on your site",
        "a broken staple in the {series} box set cut my kid's hand",
        "delete my account and all my personal data",
        "I'm reporting you to the Better Business Bureau",
        "worst customer service ever, I want compensation",
        "human please, the bot keeps giving me the wrong answer",
        "escalate this please",
        "I need to speak with someone about a billing dispute",
        "can a supervisor call me back today",
        "operator",
        "let me talk to your boss",
        "is there a real human I can talk to?",
        "ningen to hanashitai. real person please",
        "I've been waiting 3 weeks for {order_id}, nobody answers my emails, I want a manager NOW",
        "I was double charged and your chat keeps looping, I need an actual person",
        "my credit card was charged {price} for something I never ordered. get someone on this",
        "stop sending me marketing emails, I've unsubscribed 5 times, this is illegal",
        "I received a book with someone else's name and address on the invoice, that's a privacy breach",
        "Why can't I reach a human at your company?",
        "transfer me to a live agent",
        "this is ridiculous. I want to speak to someone in charge",
        "I'm disputing this charge with my credit card company",
        "my account got hacked and my saved address was changed",
        "you've refunded me the wrong amount three times, I want this handled by a person",
        "I'd like to lodge a complaint about how I was treated by your support team",
        "put me through to customer service",
        "I'm a lawyer representing a customer regarding order {order_id}",
        "I want to escalate order {order_id} to a supervisor",
        "customer service phone number?",
        "there was a bug crawling out of the package, this is a health hazard",
        "can i get a callback from a real person",
        "your site leaked my email, I'm getting spam addressed to my account name",
        "I'm going to leave a 1 star review everywhere unless someone fixes this",
        "i need a human, this is urgent",
        "I'm done with this bot. real agent now",
        "talk to support",
        "the {series} book has a page with a slur on it, I want to report this to someone",
        "I think someone is reselling stolen books through your store",
        "Speak to a representative",
        "this is harassment, your courier keeps calling my private number",
        "there are charges on my card I don't recognize from your store",
        "I need to talk to someone about a serious problem",
        "can someone from your team call me",
        "I want to speak to a human about my account",
        "your company stole my money and I'm reporting it",
        "I want to complain about the service I received",
        "connect me to a real person please",
    ),
}

# Japanese-script messages (customers write 「返品したい」 as often as "henpin shitai"). Appended to each label's
# templates, so they are split by template like the rest: some phrasings are only ever seen in validation/test.
JAPANESE_TEMPLATES: dict[str, tuple[str, ...]] = {
    "product_question": (
        "{series_ja}の{vol}巻は在庫ありますか？",
        "この巻の在庫ありますか",
        "{series_ja}は全何巻ですか",
        "{series_ja}の最新刊はいつ発売ですか？",
        "{series_ja} {vol}巻 英語版ありますか",
        "{series_ja}の作者は誰ですか",
        "{series_ja}って完結してる？",
        "{series_ja}の対象年齢を教えてください",
        "{series_ja}の{vol}巻って在庫ある？",
        "{series_ja}のボックスセットはまだ買えますか",
        "{series_ja}の{vol}巻は何ページですか",
        "{series} {vol}巻 在庫ある?",
    ),
    "recommendation": (
        "{series_ja}みたいな漫画を教えて",
        "おすすめの{genre_ja}漫画はありますか？",
        "初心者におすすめの漫画は？",
        "{rel_ja}へのプレゼントにいい漫画ある？",
        "泣ける漫画を探しています",
        "{series_ja}が好きなんだけど、似たような作品ある？",
        "ダークファンタジーでおすすめは？",
        "怖いホラー漫画を読みたい",
        "{series}っぽいの何かない？",
        "最近おもしろい漫画ある？",
    ),
    "order_status": (
        "注文{order_id}はどこにありますか",
        "注文した商品がまだ届きません",
        "{order_id}の配送状況を教えてください",
        "荷物の追跡番号を知りたい",
        "いつ届きますか？注文番号は{order_id}です",
        "もう発送されましたか？",
        "配達済みになってるけど届いてない",
        "注文状況を確認したい {order_id}",
        "{order_id} まだ届かないんだけど",
        "荷物が止まってるみたいです",
    ),
    "return_refund": (
        "返品したい",
        "返品したいです。{order_id}の本が破れていました",
        "返金はいつされますか",
        "違う巻が届いたので交換してほしい",
        "届いた本が破損していました",
        "返品の送料は誰が払いますか",
        "開封したボックスセットは返品できますか",
        "返金してください",
        "返品期限は何日ですか",
        "{series_ja}の{vol}巻が二冊届いた、一冊返したい",
    ),
    "policy_faq": (
        "送料はいくらですか",
        "{country_ja}に発送できますか",
        "支払い方法は何が使えますか",
        "マンガクラブの会費はいくら？",
        "予約注文はいつ請求されますか",
        "配送にどのくらいかかりますか",
        "PayPalは使えますか",
        "ポイントの有効期限は？",
        "速達はありますか",
        "予約したらいつ課金される？",
    ),
    "price_deal": (
        "{series_ja}の{vol}巻はいくらですか",
        "クーポンコードが使えません",
        "セールはやっていますか",
        "{series_ja}のボックスセットの値段は？",
        "他の店より高いので価格を合わせてもらえますか",
        "割引はありますか",
        "電子版の方が安いですか",
        "{series} {vol}巻 いくら？",
        "{code}のクーポンが無効って出る",
        "まとめ買いで安くなりますか",
    ),
    "chitchat": (
        "こんにちは",
        "ありがとうございます！",
        "おはようございます",
        "あなたはロボットですか？",
        "またね",
        "助かりました、ありがとう",
        "よろしくお願いします",
        "こんばんは〜",
        "了解です",
        "漫画好きなの？",
    ),
    "escalation": (
        "人間のオペレーターと話したい",
        "担当者につないでください",
        "身に覚えのない請求があります",
        "責任者を出してください",
        "アカウントが乗っ取られたかもしれない",
        "電話で話したいです",
        "クレームを入れたい。対応が最悪です",
        "個人情報を削除してください",
        "偽物が届いた、訴えます",
        "人と話させて",
    ),
}
TEMPLATES = {label: templates + JAPANESE_TEMPLATES[label] for label, templates in TEMPLATES.items()}


# A few extra generic fragments mixed into messages (greetings, thanks, slang, rambling, Japanese).
GREETINGS = ("hi, ", "hello! ", "hey ", "hi there, ", "good morning! ", "konnichiwa! ", "sumimasen, ", "yo ",
             "hiya, ", "excuse me, ", "Hi team, ", "hey hey ", "Hello, ")
THANKS = (" thanks!", " thank you", " ty", " thx", " arigatou!", " arigatou gozaimasu", " thanks in advance",
          " 🙏", " pls and thank u", " thank youuu", " domo!", " onegaishimasu")
SLANG_PREFIX = ("ngl ", "lowkey ", "ok so ", "quick question: ", "real quick, ", "bruh ", "um ",
                "sorry if this is dumb but ", "hey quick q, ", "so uh ", "fr tho ")
SLANG_SUFFIX = (" fr", " tbh", " lol", " pls", " asap", "!!", " 😅", " 🥺", " ✨", " 👀", " 😭", " lmao", " ngl",
                " 🤔", " 📚", " ??")
RAMBLE = (
    "So I've been collecting manga since middle school and your store is my go-to. ",
    "Long time customer here, first time using the chat. ",
    "Sorry for the long message, I'm typing this on my phone on the train. ",
    "My friend told me to ask here because I'm a bit lost. ",
    "Okay this might be a weird one. ",
    "I hope this is the right place to ask. ",
    "First of all I love your shop, the packaging is always so cute. ",
    "Hello, I am writing from abroad so sorry for my english. ",
)
ANGRY = (" this is unacceptable", "!!!", " 😡", " seriously", " I'm so done", " NOW", " ridiculous")
JOINERS = (" also ", ". Also, ", " and ", " - btw ", "\n", ". oh and ", ". ", ", plus ", "? and ")

_REAL_SERIES = (
    "One Piece", "Naruto", "Berserk", "Vagabond", "Frieren", "Chainsaw Man", "Spy x Family", "Jujutsu Kaisen",
    "Vinland Saga", "Blue Lock", "Haikyu!!", "Dandadan", "Fruits Basket", "Nana", "Yotsuba&!", "Oshi no Ko",
    "Kaguya-sama", "Delicious in Dungeon", "Monster", "20th Century Boys", "Akira", "Sailor Moon", "Death Note",
    "Attack on Titan", "My Hero Academia", "Demon Slayer", "Tokyo Ghoul", "Mob Psycho 100", "One Punch Man",
    "Hunter x Hunter", "Bleach", "Dragon Ball", "Slam Dunk", "Horimiya", "Komi Can't Communicate", "Kingdom",
    "Golden Kamuy", "Blue Period", "Witch Hat Atelier", "Vagabond", "Pluto", "Dorohedoro", "Hellsing",
)
_REAL_AUTHORS = ("Naoki Urasawa", "Junji Ito", "Takehiko Inoue", "Rumiko Takahashi", "Kentaro Miura",
                 "Eiichiro Oda", "Tatsuki Fujimoto", "CLAMP", "Hirohiko Araki", "Ai Yazawa")
_GENRES = ("shonen", "seinen", "shojo", "josei", "isekai", "mecha", "slice of life", "horror", "romance",
           "sports", "fantasy", "mystery", "sci-fi", "comedy", "cooking", "psychological", "action")
_FORMATS = ("tankobon", "omnibus", "box set", "digital edition", "deluxe edition", "hardcover", "paperback",
            "collector's edition", "3-in-1")
_ATTRIBUTES = ("ISBN", "isbn", "page count", "number of pages", "trim size", "dimensions", "weight", "publisher",
               "release date", "age rating", "translator", "chapter count", "cover artist", "binding", "print run",
               "reading direction", "shipping weight", "edition", "imprint", "language")
_FORMAT_PAIRS = ("paperback or hardcover", "softcover or hardback", "hardcover or paperback", "print or digital",
                 "tankobon or omnibus", "single volume or 3-in-1", "regular or deluxe", "physical or ebook")
_LANGS = ("English", "Japanese", "Spanish", "French", "German", "Portuguese", "Italian")
_RELS = ("son", "daughter", "nephew", "niece", "girlfriend", "boyfriend", "sister", "brother", "best friend",
         "dad", "mom", "coworker", "wife", "husband", "kid")
_TOPICS = ("cooking", "chess", "boxing", "witches", "vampires", "office life", "time travel", "music",
           "detectives", "space", "samurai", "ghosts", "baking", "volleyball", "dragons", "art school")
_COMPETITORS = ("Amazon", "Barnes & Noble", "BookOff", "Books-A-Million", "Walmart", "Target", "eBay")
_HOLIDAYS = ("christmas", "her birthday", "his birthday", "valentine's day", "the holidays", "graduation",
             "mother's day", "Hanukkah")
_COUNTRIES = ("Canada", "the UK", "Germany", "Australia", "Japan", "Mexico", "France", "Brazil", "Spain", "India")
_CITIES = ("Memphis", "Louisville", "Chicago", "Dallas", "Newark", "Atlanta", "Ontario, CA", "Reno")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "yesterday", "last week")
_JA_SERIES = japanese_names()
_GENRES_JA = ("少年", "青年", "少女", "ホラー", "ファンタジー", "恋愛", "スポーツ", "ミステリー", "異世界", "日常系", "グルメ")
_RELS_JA = ("息子", "娘", "彼女", "彼氏", "友達", "姉", "弟", "父", "母")
_COUNTRIES_JA = ("カナダ", "イギリス", "ドイツ", "オーストラリア", "日本", "メキシコ", "フランス")
_STOPWORDS = frozenset(("a", "an", "as", "of", "the", "in", "to", "is", "on", "at", "and", "who"))
_CODES = ("MANGA20", "SUMMER15", "WELCOME10", "OTAKU25", "BOXSET30", "FREESHIP", "SPRING10", "NEWREADER")


def template_ids(label: str) -> list[str]:
    return [f"{label}:{i:03d}" for i in range(len(TEMPLATES[label]))]


def split_templates(seed: int) -> dict[str, dict[str, list[str]]]:
    """label -> split -> template ids; a template id is in exactly one split."""
    out: dict[str, dict[str, list[str]]] = {}
    for label in INTENT_LABELS:
        ids = template_ids(label)
        random.Random(f"{seed}:split:{label}").shuffle(ids)
        n_val = max(3, round(len(ids) * SPLIT_FRACTIONS["validation"]))
        n_test = max(3, round(len(ids) * SPLIT_FRACTIONS["test"]))
        out[label] = {
            "test": sorted(ids[:n_test]),
            "validation": sorted(ids[n_test:n_test + n_val]),
            "train": sorted(ids[n_test + n_val:]),
        }
    return out


class _Slots:
    """Slot values for templates, drawn from the catalog, the orders and small vocabularies."""

    def __init__(self, rng: random.Random, series: Sequence[Series], order_ids: Sequence[str]) -> None:
        self.rng = rng
        self.series = list(series)
        self.order_ids = list(order_ids)
        self._last_vol = 1

    def series_name(self) -> str:
        rng = self.rng
        if rng.random() < 0.22:
            name = rng.choice(_REAL_SERIES)
        else:
            name = self.rng.choice(self.series).name
            r = rng.random()
            if r < 0.15:
                words = [w for w in re.split(r"[\s:,]+", name) if w]
                if len(words) > 3:  # customers shorten long names
                    short = words[-2:] if rng.random() < 0.5 else words[:3]
                    while len(short) > 1 and short[-1].lower() in _STOPWORDS:
                        short = short[:-1]
                    while len(short) > 1 and short[0].lower() in _STOPWORDS:
                        short = short[1:]
                    name = " ".join(short)
            elif r < 0.22 and name.startswith("The "):
                name = name[4:]
        return name.lower() if rng.random() < 0.3 else name

    def series_ja(self) -> str:
        """A series name as Japanese customers write it: Japanese script mostly, else the English name."""
        if self.rng.random() < 0.75:
            return self.rng.choice(_JA_SERIES)
        return self.series_name()

    def title(self) -> str:
        rng = self.rng
        series, vol = self.series_name(), self.vol()
        return rng.choice((
            f"{series}, Vol. {vol}", f"{series} vol {vol}", f"{series} volume {vol}", f"{series} v{vol}",
            f"vol. {vol} of {series}", f"{series} #{vol}", f"{series} {vol}", f"{series} Volume {vol}",
        ))

    def order_id(self) -> str:
        rng = self.rng
        oid = rng.choice(self.order_ids) if rng.random() < 0.6 else f"MA-{rng.randrange(10_000_000, 100_000_000)}"
        r = rng.random()
        if r < 0.1:
            return oid.lower()
        if r < 0.18:
            return "#" + oid
        if r < 0.23:
            return oid.replace("-", "")
        if r < 0.27:
            return oid.replace("-", " ")
        return oid

    def vol(self) -> str:
        self._last_vol = self.rng.choice((1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 17, 20, 23, 27))
        return str(self._last_vol)

    def vol2(self) -> str:
        """A second volume number, after the last one drawn ("vol {vol} through {vol2}")."""
        return str(self._last_vol + self.rng.randrange(1, 6))

    def author(self) -> str:
        if self.rng.random() < 0.2:
            return self.rng.choice(_REAL_AUTHORS)
        return self.rng.choice(self.series).author

    def char(self) -> str:
        s = self.rng.choice(self.series)
        name = self.rng.choice((s.hero, s.ally))
        return name.split()[0] if self.rng.random() < 0.6 else name

    def arc(self) -> str:
        return self.rng.choice(self.rng.choice(self.series).arcs)

    def price(self) -> str:
        return self.rng.choice(("$", "$", "$", "")) + f"{self.rng.choice((5, 7, 9, 10, 11, 12, 13, 14, 20, 25, 30, 40, 50, 60, 80, 100)) - self.rng.choice((0, 0.01, 0.01, 0.5)):g}"

    def values(self) -> dict[str, Callable[[], str]]:
        rng = self.rng
        return {
            "title": self.title, "series": self.series_name, "series2": self.series_name, "vol": self.vol,
            "vol2": self.vol2, "author": self.author, "order_id": self.order_id, "char": self.char,
            "arc": self.arc, "price": self.price,
            "genre": lambda: rng.choice(_GENRES), "fmt": lambda: rng.choice(_FORMATS),
            "lang": lambda: rng.choice(_LANGS), "rel": lambda: rng.choice(_RELS),
            "topic": lambda: rng.choice(_TOPICS), "competitor": lambda: rng.choice(_COMPETITORS),
            "holiday": lambda: rng.choice(_HOLIDAYS), "country": lambda: rng.choice(_COUNTRIES),
            "city": lambda: rng.choice(_CITIES), "month": lambda: rng.choice(_MONTHS),
            "carrier": lambda: rng.choice(("UPS", "USPS", "FedEx", "ups", "usps", "fedex")),
            "weekday": lambda: rng.choice(_WEEKDAYS), "code": lambda: rng.choice(_CODES),
            "days": lambda: str(rng.randrange(2, 30)), "day": lambda: str(rng.randrange(1, 29)),
            "age": lambda: str(rng.randrange(7, 17)), "n": lambda: str(rng.randrange(2, 12)),
            "n2": lambda: str(rng.randrange(12, 40)), "pct": lambda: str(rng.choice((10, 15, 20, 25, 30, 40, 50))),
            "chap": lambda: str(rng.randrange(1, 160)),
            "attr": lambda: rng.choice(_ATTRIBUTES), "fmtpair": lambda: rng.choice(_FORMAT_PAIRS),
            "series_ja": self.series_ja, "genre_ja": lambda: rng.choice(_GENRES_JA),
            "rel_ja": lambda: rng.choice(_RELS_JA), "country_ja": lambda: rng.choice(_COUNTRIES_JA),
        }


_SLOT = re.compile(r"\{(\w+)\}")


def fill(template: str, slots: dict[str, Callable[[], str]]) -> str:
    return _SLOT.sub(lambda m: slots[m.group(1)](), template)


# ------------------------------------------------------------------------------------------------ noise
_KEYBOARD = {c: n for c, n in zip("qwertyuiopasdfghjklzxcvbnm", "wqrtyuiopoasdfghjklkzxcvbnm")}


def _typo(word: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(word) - 1)
    op = rng.randrange(4)
    if op == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swap
    if op == 1:
        return word[:i] + word[i + 1:]  # drop
    if op == 2:
        return word[:i] + word[i] + word[i:]  # double
    return word[:i] + _KEYBOARD.get(word[i].lower(), word[i]) + word[i + 1:]  # neighbour key


def add_noise(text: str, rng: random.Random, label: str) -> str:
    """Typos, casing and punctuation changes; order ids (anything with a digit) are left intact."""
    if rng.random() < 0.28:
        words = text.split(" ")
        candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
        for i in rng.sample(candidates, k=min(len(candidates), rng.choice((1, 1, 1, 2)))):
            words[i] = _typo(words[i], rng)
        text = " ".join(words)
    r = rng.random()
    caps = 0.12 if label == "escalation" else 0.03
    if r < caps:
        text = text.upper()
    elif r < caps + 0.35:
        text = text.lower()
    if rng.random() < 0.3:
        text = text.rstrip(".!?")
    if rng.random() < 0.15:
        text = text.replace("'", "").replace("\u2019", "")
    return text.strip() or text


def decorate(text: str, rng: random.Random, label: str) -> str:
    """Greetings/thanks, slang, emoji, rambling prefixes and angry suffixes around a message."""
    if label == "chitchat":
        if rng.random() < 0.2:
            text += rng.choice((" 😊", " lol", " :)", " haha", "!", " ✨", " 🙏", " ^^", " arigatou"))
        if rng.random() < 0.1:
            text = rng.choice(("oh ", "ok ", "hehe ", "aww ")) + text
        return text
    if rng.random() < 0.16:
        text = rng.choice(GREETINGS) + text
    elif rng.random() < 0.1:
        text = rng.choice(SLANG_PREFIX) + text
    elif rng.random() < 0.05:
        text = rng.choice(RAMBLE) + text
    if rng.random() < 0.14:
        text += rng.choice(THANKS)
    elif rng.random() < 0.12:
        text += rng.choice(SLANG_SUFFIX)
    if label == "escalation" and rng.random() < 0.2:
        text += rng.choice(ANGRY)
    return text


def _normalise(text: str) -> str:
    """Dedupe key: lowercase word characters (kana and kanji included), punctuation and spacing dropped."""
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


def _make_split(
    label: str, n: int, pools: dict[str, list[str]], slots: _Slots, rng: random.Random,
    seen: set[str],
) -> list[dict[str, str]]:
    values = slots.values()
    own = pools[label]
    secondaries = [s for s in COMPOSITE_SECONDARIES.get(label, ()) if pools.get(s)]
    out: list[dict[str, str]] = []
    order = list(own)
    cap = max(3, -(-3 * n // (2 * len(own))))  # ceil(1.5 * n / templates)
    used: dict[str, int] = {}
    attempts = 0
    while len(out) < n and attempts < n * 30:
        attempts += 1
        tid = order[attempts % len(order)]
        if used.get(tid, 0) >= cap:  # no template may dominate a split (slot-free ones dedupe out early)
            continue
        text = fill(TEMPLATES[label][int(tid.split(":")[1])], values)
        if secondaries and rng.random() < COMPOSITE_SHARE:
            other = rng.choice(pools[rng.choice(secondaries)])
            other_label, other_idx = other.split(":")
            other_text = fill(TEMPLATES[other_label][int(other_idx)], values)
            joiner = rng.choice(JOINERS)
            text = f"{text}{joiner}{other_text}" if rng.random() < 0.5 else f"{other_text}{joiner}{text}"
            tid = f"{tid}+{other}"
        text = add_noise(decorate(text, rng, label), rng, label)
        key = _normalise(text)
        if not key or key in seen:
            continue
        seen.add(key)
        used[tid.split("+")[0]] = used.get(tid.split("+")[0], 0) + 1
        out.append({"text": text, "label": label, "template_id": tid})
    return out


def generate_intents(
    seed: int, series: Sequence[Series], order_ids: Sequence[str]
) -> dict[str, list[dict[str, str]]]:
    """split -> records ``{"text", "label", "template_id"}``, each split sorted by (label, template, text)."""
    splits = split_templates(seed)
    fractions = dict(SPLIT_FRACTIONS, train=1.0 - sum(SPLIT_FRACTIONS.values()))
    seen: set[str] = set()
    out: dict[str, list[dict[str, str]]] = {s: [] for s in SPLITS}
    # Test first, then validation, then train: an exact duplicate text is kept only in the held-out split.
    for split in ("test", "validation", "train"):
        pools = {label: splits[label][split] for label in INTENT_LABELS}
        for label in INTENT_LABELS:
            rng = random.Random(f"{seed}:intents:{label}:{split}")
            slots = _Slots(rng, series, order_ids)
            n = round(TARGET_PER_LABEL[label] * fractions[split])
            out[split].extend(_make_split(label, n, pools, slots, rng, seen))
    for split in SPLITS:
        out[split].sort(key=lambda r: (r["label"], r["template_id"], r["text"]))
    return out
