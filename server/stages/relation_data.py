"""Training messages for the follow-up relation classifier (server/stages/relation.py).

Each message is what a customer might send after an answer, labelled with how it relates to the conversation's
state: ``same_item`` (asks about the product in play: price, stock, "tell me more", its return), ``other_volume``
(another volume of the series in play), ``attribute`` (an attribute of the item: author, publisher, pages, format,
language, release date, rating -- the attribute is a second label), ``same_author`` (more by the item's author),
``order`` (about the order given earlier) and ``new_topic`` (stands alone: small talk, a title of its own, a
policy question, a new request).

These phrase lists are the classifier's own: written apart from, and disjoint with, the frozen conversation sets
it is measured on (``tests/fixtures/conversations_openworld/``; ``tests/unit/test_conversation_sets.py`` checks no
phrase is shared) and from the golden conversation templates (``model_repository/golden/conversations.py``). The
examples are generated from them with a fixed seed: slot fills (numbers, ordinals, pronouns), case and
punctuation noise, a polite prefix or suffix.
"""

from __future__ import annotations

import random

RELATIONS = ("same_item", "other_volume", "attribute", "same_author", "order", "new_topic")
ATTRIBUTES = ("author", "publisher", "pages", "format", "language", "release_date", "rating")

#: {it} = a pronoun or reference to the item in play
_IT = ("it", "that", "that one", "this one", "this", "the book", "that volume", "this title", "that manga", "the one you mentioned")

SAME_ITEM = (
    "is {it} in stock", "how much is {it}", "what does {it} cost", "do you still have {it}", "can i buy {it}",
    "i'll take {it}", "add {it} to my cart", "is {it} available now", "price on {it}?", "how many do you have left",
    "any left?", "can you reserve {it} for me", "tell me more about {it}", "what's {it} about", "is {it} any good",
    "describe {it} for me", "can i return {it} if i don't like it", "ok i want {it}", "do you have {it} on sale",
    "is there a discount on {it}", "is {it} sold out", "what's the story of {it}", "summary of {it}?",
    "is {it} worth buying", "still got {it}?", "how much would {it} be", "{it}, how much?", "{it} available?",
    "can i send {it} back later", "how would i return {it}", "can {it} be returned", "i want to send {it} back",
    "return {it}?", "how to return {it}", "what if {it} arrives damaged", "can i exchange {it}", "does {it} ship today", "the {ord} one you showed", "tell me about the {ord} one",
    "how much is the {ord} one", "is the {ord} pick in stock", "{ord} one please", "i want the {ord} suggestion",
    "more details on the {ord} one", "what is the {ord} book about", "{ord} one", "the {ord}", "{ord} pick",
    "gimme the {ord} one", "i'll go with the {ord} one", "{ord} one works", "in stock", "price", "available", "cost?",
    "how much", "have any?", "is it there still",
)
OTHER_VOLUME = (
    "what about vol {n}", "and volume {n}?", "do you have vol {n} too", "how much is volume {n}", "vol {n} in stock?",
    "is volume {n} available", "and book {n}", "can i get volume {n}", "i'd like the {nth} instead",
    "switch to vol {n}", "go to volume {n}", "what's volume {n} like", "let me see the {nth}", "price for the {nth} book",
    "jump to {n}", "{n} instead?", "do you stock the {nth}", "how about number {n}", "is {word} in stock",
    "the {nth} in the series?", "next book?", "after that one?", "the one that comes next", "previous book?",
    "the last one before this", "the book before", "one before?", "i need volume {word}", "what about book {word}", "the {nth} volume?",
    "how about the {nth} one", "is the {nth} book in stock", "price of the {nth} volume", "{n}?", "and {n}?",
    "what about {n}", "got {n} as well?", "the next one", "the next volume please", "what comes after it",
    "the following volume?", "is the sequel in stock", "the one after this", "and the one before?",
    "previous volume?", "the earlier volume", "the volume prior to it", "go back one volume", "one volume back",
    "i need {n} actually", "actually make it {n}", "i want number {n}", "no, {n}", "rather {n}", "earlier one?",
    "one before it", "one volume earlier", "the {n}th", "{n}th one", "what does number {n} cost", "the price for {n}",
    "the {nth} please", "{nth} volume price", "number {n} please", "do you carry the {nth} installment",
    "and part {n}?", "is there a volume {n}", "what's vol {word} cost", "volume {n} then", "{n}巻は？", "次の巻は",
    "前の巻は？", "what about a {lang} edition", "{lang} version?", "is there one in {lang}", "got {it} in {lang}",
    "any {lang} copies", "in {lang} maybe?", "would {it} come in {lang}", "a {lang} translation of {it}?",
    "#{n} please", "how much is #{n}", "price for #{n}", "#{n} in stock?", "what about #{n} then",
    "the box set?", "is there an omnibus", "in spanish?", "the digital version?", "german edition?",
)
ATTRIBUTE_PHRASES = {
    "author": ("who authored {it}", "do you know the author", "tell me the author's name", "who is the writer",
               "which author did {it}", "who created {it}", "who's the artist", "who penned {it}", "by whom is {it}",
               "the writer of {it}?", "who was {it} written by", "is {it} by a famous mangaka", "artist?", "writer?",
               "who does the art for {it}", "who's {it} from, which author",
               "who wrote {it}", "who is the author", "who drew {it}", "who's the author of {it}", "written by?",
               "who made {it}", "the mangaka?", "which mangaka is {it} by", "who is {it} by", "who's the creator",
               "creator of {it}?", "who illustrated {it}", "the artist's name?", "作者は？", "誰が書いたの"),
    "publisher": ("publishing company?", "who released {it}", "which label is {it} on", "who's the english publisher of {it}",
                  "what publisher is {it} from", "is {it} a viz book", "whose imprint is {it}", "publisher name please",
                  "who publishes the translation", "which press put {it} out",
               "who publishes {it}", "which publisher", "publisher of {it}?", "who is the publisher",
                  "what label publishes {it}", "which publisher prints {it}", "published by whom?",
                  "the english publisher?", "what company publishes {it}",
                  "which company releases {it} in english", "who puts {it} out in english", "the imprint?",
                  "who prints {it}", "which company prints the {lang} edition", "who prints the translation",
                  "出版社は？"),
    "pages": ("what's the page count", "how many pages long is {it}", "total pages?", "the pages in {it}?", "is {it} long",
              "how big is {it}, pages", "how many pages does {it} run", "length in pages?", "is {it} a thick volume",
              "how long a read is {it}",
               "how many pages is {it}", "number of pages?", "pages?", "how many pages in {it}", "how long is {it}",
              "page length of {it}", "how many pages has {it} got", "is {it} a short book", "how thick is {it}",
              "ページ数は？"),
    "format": ("is {it} physical", "do you have {it} as an ebook or print", "is {it} a paper copy", "print or ebook?",
               "is {it} the digital edition", "what edition is {it}", "is it a real book or digital", "format?",
               "is {it} softcover", "what type of copy is {it}",
               "is {it} a paperback", "is {it} digital", "is {it} an ebook", "physical or digital?",
               "what format is {it}", "is {it} hardcover", "which edition is {it}", "is {it} a print copy",
               "kindle version?", "what kind of book is {it}, paperback?", "形式は？"),
    "language": ("is {it} in english or japanese", "what's the language of {it}", "is {it} the japanese version",
                 "english or original?", "is {it} an english translation", "which language is {it} printed in",
                 "can i read {it} if i only know english", "is the text in english", "is {it} a translation",
               "what language is {it}", "is {it} printed in english", "is {it} translated", "language?",
                 "is {it} in japanese", "english translation?", "is the text english", "which translation is {it}",
                 "言語は？"),
    "release_date": ("when did {it} come out", "when was {it} first published", "release?", "what's the release date",
                     "when was {it} out", "when did {it} hit shelves", "is {it} new or old", "when was it released",
                     "what date was {it} published", "release year of {it}?",
               "when was {it} released", "release date of {it}?", "when did {it} release",
                     "when does {it} come out", "what year is {it} from", "publication date?", "when is it out",
                     "how old is {it}", "date it came out?", "発売日は？"),
    "rating": ("is {it} age appropriate", "what's the age rating", "is {it} for kids", "can a child read {it}",
               "is {it} family friendly", "what are the reviews like", "how many stars does {it} have",
               "do readers like {it}", "is {it} rated mature", "what rating does {it} have", "is {it} violent",
               "what age is {it} for", "is {it} suitable for children", "is {it} kid friendly", "age rating of {it}",
               "is {it} for adults", "is {it} mature", "how is {it} rated", "reviews of {it}?",
               "what do people think of {it}", "star rating?", "is {it} ok for teens", "is {it} fine for a {n} year old",
               "can my {n}-year-old read {it}", "is {it} appropriate for young readers", "ok for a kid age {n}?", "is {it} ok for my {n} year old", "would a kid be ok reading {it}",
               "what age range is {it} for", "who's the target audience for {it}", "which readers is {it} meant for",
               "what age group is {it} for", "which age group suits {it}", "who would {it} suit",
               "対象年齢は？"),
}
SAME_AUTHOR = (
    "what else did the author write", "other books by the same author", "more by this author",
    "anything else by the mangaka", "what else by them", "other series by the same artist",
    "does the author have more", "more from the same writer", "other works by the author",
    "same author, anything else", "what else do they have", "more by him?", "more by her", "other manga by them",
    "anything else from that author", "what else did they draw", "is there more from the same mangaka",
    "any other series from this writer", "other works from the artist?", "more from the creator", "what other manga did she write", "what other manga did he draw",
    "any other titles by that author", "books by the same creator", "the author's other series",
    "is there more from whoever wrote {it}", "other stuff from this mangaka", "similar books by the same person",
    "this author's other books?", "what else has this mangaka drawn", "what has the artist also made",
    "what else has the writer done", "has this mangaka drawn anything else", "other titles this artist drew",
    "同じ作者の他の作品は？",
)
ORDER = (
    "where is my package", "has it shipped", "when will it arrive", "what's the tracking number",
    "which courier is bringing it", "is my order on the way", "any update on my order", "status of my order?",
    "it still hasn't arrived", "when does my parcel come", "did you send it yet", "what carrier is it with",
    "is it out for delivery", "delivery date?", "can you track it", "why is my order late",
    "can i cancel the order", "has the shipment left", "is the package delayed", "when will i get my books",
    "where's the parcel now", "estimated arrival?", "tracking info please", "is the order processed yet",
    "has my stuff been delivered", "is it processing still", "has it been shipped", "when do i get the box",
    "did it go out yet", "is it on its way", "when is it coming", "shipped yet?", "when does it get to me",
    "is the delivery late", "when will the package come", "where is it now", "has it been sent",
    "any tracking yet", "is it with the carrier", "what's the delivery status", "when is the delivery",
    "has the order gone out", "is it delivered", "expected delivery?", "how long until it arrives",
    "any news on my parcel", "is my box on its way", "shipment update?", "where's my stuff at",
    "how's my delivery looking", "注文はいつ届きますか", "配送状況は？",
)
NEW_TOPIC = (
    "thanks!", "ok cool", "great, thank you", "lol", "hmm", "ok", "awesome", "good to know", "brb",
    "you're helpful", "haha nice", "no worries", "perfect", "wow", "i see", "makes sense", "cool cool",
    "hello", "hi there", "are you a bot?", "what can you do", "bye", "have a nice day",
    "do you ship internationally", "what is your return policy", "how long does shipping take",
    "do you accept paypal", "can i pay with a gift card", "what are your store hours", "do you do price matching",
    "is shipping free over $35", "how do refunds work", "can i change my address",
    "recommend me some horror manga", "any good romance series?", "suggest a sports manga",
    "what's popular right now", "i want something like berserk", "best isekai you have?",
    "is berserk vol 2 in stock", "how much is naruto vol 3", "do you have one piece volume 10",
    "tell me about vinland saga", "who wrote chainsaw man", "price of spy x family 4",
    "do you carry frieren", "is demon slayer box set available", "i want to talk to a human",
    "connect me to an agent", "this is useless", "my card was charged twice", "sure", "alright then",
    "thank you so much", "ok got it", "right", "yep", "nope", "that's all", "k", "noted", "great stuff",
    "do you have gift wrapping", "where are you located", "can i pick up in store", "how do i create an account",
)

#: Japanese-script follow-ups (customers write in kana/kanji as well as romaji): each relation's own phrasing,
#: generated with Japanese fillers (:data:`_JA_PREFIX` / :data:`_JA_SUFFIX`) rather than the English ones.
JA_PHRASES: dict[str, tuple[str, ...]] = {
    "same_item": ("在庫ありますか", "それいくら", "値段は", "それ買いたい", "カートに入れて", "まだ売ってる", "詳しく教えて",
                  "どんな話", "在庫は", "取り置きできる", "返品できる", "それの値段は", "それまだある", "その本の在庫",
                  "これの在庫は", "あれまだ売ってる", "それは在庫ある", "その巻はある"),
    "other_volume": ("{n}巻の値段は", "{n}巻も欲しい", "{n}巻は在庫ある", "{n}巻ください", "第{n}巻は", "続きは",
                     "次巻は", "前巻は", "一つ前の巻", "最新巻は", "{n}巻ある", "{n}巻あります", "{n}巻はどう"),
    "same_author": ("この作者の他の作品", "同じ作家の別の漫画", "この人の他のシリーズは", "他に何を描いてる",
                    "同じ先生の作品ある"),
    "order": ("荷物はどこ", "いつ届く", "発送された", "追跡番号は", "配送状況は", "まだ届かない"),
    "new_topic": ("こんにちは", "ありがとう", "送料はいくら", "返品ポリシーは", "おすすめある", "ギフトカードある",
                  "支払い方法は", "了解", "なるほど"),
}
JA_ATTRIBUTE_PHRASES: dict[str, tuple[str, ...]] = {
    "author": ("作者は誰", "著者は", "誰が描いた", "作家の名前", "描いたのは誰", "原作者は", "この漫画の作者", "漫画家は誰",
               "誰の作品"),
    "publisher": ("出版社はどこ", "どこから出てる", "レーベルは", "出版社を教えて", "発行元は", "どこの出版",
                  "版元は"),
    "pages": ("ページ数を教えて", "何ページある", "何頁", "ページ数どれくらい", "厚さは", "総ページ数", "ページは何枚"),
    "format": ("紙の本ですか", "電子書籍ですか", "紙版", "電子版", "形式は", "単行本", "紙と電子どっち", "電子で読める"),
    "language": ("英語ですか", "日本語版", "言語は", "翻訳版", "何語で書かれてる", "英訳", "日本語で読める", "英語で読める"),
    "release_date": ("発売日を教えて", "いつ出たの", "発売はいつ", "刊行日は", "いつ発売された", "発売日", "出版日は",
                     "いつ出版"),
    "rating": ("対象年齢は", "子供向け", "レビューは", "評判はどう", "何歳から読める", "評価どう", "星いくつ",
               "子供が読んでも大丈夫"),
}

#: Romaji follow-ups (Japanese typed in Latin letters, as many customers do): each relation's phrasing, generated
#: with romaji fillers (:data:`_ROMAJI_PREFIX` / :data:`_ROMAJI_SUFFIX`). Written from the language, not from any
#: evaluation set (tests/unit/test_conversation_sets.py checks none is a phrase or a turn of a frozen set).
ROMAJI_PHRASES: dict[str, tuple[str, ...]] = {
    "same_item": ("zaiko aru", "ikura desu ka", "sore kudasai", "kore kaitai", "mada utteru", "nedan wa", "sore ikura",
                  "kaato ni irete", "torioki dekiru", "henpin dekiru", "donna hanashi"),
    "other_volume": ("{n} kan wa", "tsugi no kan wa", "mae no kan wa", "dai {n} kan", "saishinkan wa", "{n} kan mo hoshii",
                     "tsuzuki wa", "hitotsu mae no kan"),
    "same_author": ("onaji sakusha no hoka no sakuhin", "kono hito no hoka no manga", "onaji sensei no sakuhin aru",
                    "hoka ni nani o kaiteru", "onaji sakka no betsu no manga"),
    "order": ("nimotsu wa doko", "itsu todoku", "hassou sareta", "tsuiseki bangou wa", "mada todokanai", "chuumon wa doko made",
              "haisou joukyou wa", "itsu tsuku"),
    "new_topic": ("arigatou", "konnichiwa", "souryou wa ikura", "wakarimashita", "naruhodo", "osusume aru",
                  "shiharai houhou wa", "ryoukai", "sayounara"),
}
ROMAJI_ATTRIBUTE_PHRASES: dict[str, tuple[str, ...]] = {
    "author": ("sakusha wa", "sakusha no namae", "dare no sakuhin", "mangaka no namae oshiete", "kore wa dare ga egaita",
               "gensakusha wa", "egaita hito", "chosha wa", "sakka wa dare"),
    "publisher": ("shuppansha wa", "shuppansha oshiete", "doko kara deteru", "hakkoumoto wa", "reeberu wa",
                  "doko no shuppansha", "hanmoto wa"),
    "pages": ("peeji suu oshiete", "nan peeji aru", "peeji wa nanmai", "atsusa wa", "nan peeji desu ka", "sou peeji suu"),
    "format": ("kamibon", "denshi desu ka", "kami ka denshi ka", "tankoubon desu ka", "denshi de yomeru", "kamiban desu ka"),
    "language": ("nihongo ban", "eigo desu ka", "nani go de kaiteru", "honyakuban desu ka", "eiyaku", "eigo de yomeru",
                 "gengo wa"),
    "release_date": ("hatsubaibi oshiete", "itsu dete", "itsu shuppan sareta", "hakkoubi wa", "itsu hatsubai sareta",
                     "kankoubi wa"),
    "rating": ("nansai kara yomeru", "kodomo muke desu ka", "hyouban wa", "rebyuu wa dou", "taishou nenrei wa",
               "kodomo ga yondemo daijoubu", "hoshi ikutsu"),
}

ORDINAL_WORDS = ("first", "second", "third", "last", "1st", "2nd", "3rd")
NTH = {2: "second", 3: "third", 4: "fourth", 5: "fifth", 6: "sixth", 7: "seventh", 8: "eighth", 9: "ninth",
       10: "tenth", 11: "eleventh", 12: "twelfth", 13: "thirteenth", 14: "fourteenth", 15: "fifteenth"}
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine",
                10: "ten", 11: "eleven", 12: "twelve", 13: "thirteen", 14: "fourteen", 15: "fifteen"}
_PREFIX = ("", "", "", "ok ", "and ", "so ", "hey ", "hmm ", "cool, ", "also ", "thanks. ", "wait, ", "um ")
#: Politeness around the ask (a thank-you before it, a softener in front of it): said with every relation, so the
#: classifier reads past it instead of hearing small talk.
_POLITE = ("thank you! ", "thanks a lot, ", "great, ", "lovely. ", "wonderful - ", "appreciate it! ", "perfect, and ",
           "one more thing: ", "sorry, ", "i was wondering, ", "if you don't mind, ", "quick question - ")
_SOFTEN = ("could you tell me ", "can you tell me ", "may i ask ", "do you know ", "would you know ")
_SUFFIX = ("", "", "", "?", "?", " please", " pls", " thx", "??", " then", " btw", "!")
_JA_PREFIX = ("", "", "", "あと", "ところで", "それで", "ちなみに", "えっと", "ねえ")
_JA_SUFFIX = ("", "？", "?", "ですか？", "？？", "。", "って？", "かな", "を教えて")
_ROMAJI_PREFIX = ("", "", "ano ", "sorede ", "tokorode ", "ne, ", "eto ", "ja ")
_ROMAJI_SUFFIX = ("", "?", " desu ka", " desu ka?", " ne", " kana", " tte?", " oshiete", "??")


#: {lang} = a language an edition may be in (another edition of the item in play)
_LANG = ("french", "german", "spanish", "italian", "portuguese", "japanese", "english", "korean")


def _fill(rng: random.Random, phrase: str) -> str:
    n = rng.randint(2, 15)
    return phrase.format(it=rng.choice(_IT), n=n, word=NUMBER_WORDS[n], nth=NTH[n], ord=rng.choice(ORDINAL_WORDS),
                         lang=rng.choice(_LANG))


def _noise(rng: random.Random, text: str, romaji: bool = False) -> str:
    if any("\u3040" <= ch <= "\u9fff" for ch in text):  # kana / kanji: Japanese fillers
        return rng.choice(_JA_PREFIX) + text + rng.choice(_JA_SUFFIX)
    if romaji:
        return rng.choice(_ROMAJI_PREFIX) + text + rng.choice(_ROMAJI_SUFFIX)
    if rng.random() < 0.25:  # a polite wrapper: "thank you! could you tell me who wrote it?"
        soft = rng.choice(_SOFTEN) if rng.random() < 0.5 and not text.startswith(("is ", "do ", "can ", "are ")) else ""
        text = rng.choice(_POLITE) + soft + text + rng.choice(("?", "", " please", "!"))
        return text.capitalize() if rng.random() < 0.3 else text
    text = rng.choice(_PREFIX) + text + rng.choice(_SUFFIX)
    if rng.random() < 0.2:
        text = text.capitalize()
    return text


def phrases() -> set[str]:
    """Every phrase template (for the disjointness test against the frozen sets)."""
    out = {*SAME_ITEM, *OTHER_VOLUME, *SAME_AUTHOR, *ORDER, *NEW_TOPIC}
    for v in (*ATTRIBUTE_PHRASES.values(), *JA_PHRASES.values(), *JA_ATTRIBUTE_PHRASES.values(),
              *ROMAJI_PHRASES.values(), *ROMAJI_ATTRIBUTE_PHRASES.values()):
        out |= set(v)
    return out


def examples(seed: int = 23, per_phrase: int = 6) -> tuple[list[str], list[str], list[str], list[str]]:
    """(relation texts, relation labels, attribute texts, attribute labels)."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[str] = []
    groups: list[tuple[str, tuple[str, ...]]] = [("same_item", SAME_ITEM), ("other_volume", OTHER_VOLUME),
                                                 ("same_author", SAME_AUTHOR), ("order", ORDER), ("new_topic", NEW_TOPIC)]
    groups += [("attribute", v) for v in (*ATTRIBUTE_PHRASES.values(), *JA_ATTRIBUTE_PHRASES.values())]
    groups += list(JA_PHRASES.items())
    romaji = {id(v) for v in (*ROMAJI_PHRASES.values(), *ROMAJI_ATTRIBUTE_PHRASES.values())}
    groups += [("attribute", v) for v in ROMAJI_ATTRIBUTE_PHRASES.values()] + list(ROMAJI_PHRASES.items())
    for label, group in groups:
        for phrase in group:
            seen = set()
            for _ in range(per_phrase):
                text = _noise(rng, _fill(rng, phrase), id(group) in romaji)
                if text not in seen:
                    seen.add(text)
                    texts.append(text)
                    labels.append(label)
    a_texts: list[str] = []
    a_labels: list[str] = []
    for attribute in ATTRIBUTES:
        for phrase in ATTRIBUTE_PHRASES[attribute] + JA_ATTRIBUTE_PHRASES[attribute]:
            for _ in range(per_phrase):
                a_texts.append(_noise(rng, _fill(rng, phrase)))
                a_labels.append(attribute)
        for phrase in ROMAJI_ATTRIBUTE_PHRASES[attribute]:
            for _ in range(per_phrase):
                a_texts.append(_noise(rng, _fill(rng, phrase), romaji=True))
                a_labels.append(attribute)
    return texts, labels, a_texts, a_labels
