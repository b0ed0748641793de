"""Writes recommendation requests: by genre, like a series (carried or not), gifts, with a policy ask."""

from __future__ import annotations

from model_repository.golden.phrasing import GENRE_IN_JAPANESE, NOT_CARRIED_GENRE
from model_repository.golden.policy_aspects import ASPECTS
from model_repository.golden.record import GoldenRecord
from model_repository.golden.writers import Draws, Writer, new_record, phrase

GENRE_ASKS = ("Could you suggest a {genre} series you have in stock?", "What's a solid {genre} manga to start with from your shop?",
              "I'm in the mood for some {genre}. What do you recommend?", "Point me to your best {genre} titles, please.",
              "Which {genre} series would you pick for someone new to manga?")
LIKE_SERIES_ASKS = ("I just finished {name}. What else do you have in the same vein?", "Loved {name}. Anything with a similar feel?",
                    "What would you suggest for someone who can't get enough of {name}?",
                    "My favorite series is {name}. What should I try next from your catalog?")
LIKE_NOT_CARRIED_ASKS = ("Big {name} fan here. What do you have that's similar?", "I'm looking for something like {name}. Any ideas?")
GIFT_ASKS = ("Need a gift for my {rel} who's into {genre}. I can spend about ${budget}. Suggestions?",
             "Shopping for my {rel}'s birthday, they love {genre}, budget around ${budget}. What would you get?")
DETAILED_ASKS = ("I've been reading manga for years, mostly {genre}, and I'm running out of things I haven't read. "
                 "Could you recommend something in that genre that's a little less mainstream?",
                 "My {rel} is getting into {genre} and asked me for a series to start with. What would be a good first pick from your store?")
JAPANESE_GENRE_ASKS = ("{genre_ja}のおすすめ作品を教えてもらえますか", "{genre_ja}系で面白い漫画ありますか？")
JAPANESE_LIKE_SERIES_ASKS = ("{ja}が好きなら他に何がおすすめですか", "{ja}に似た雰囲気の漫画を探しています")
ROMAJI_LIKE_SERIES_ASKS = ("{romaji} mitai na manga ga yomitai desu", "{romaji} ga suki nan desu kedo, osusume wa?")
SLANG_ASKS = ("need smth like {name} asap, recs?", "gimme {genre} recs pls", "any {genre} bangers u got?")
FRAGMENT_ASKS = ("{genre} recs?", "something like {name}?", "more {genre} pls")
RECOMMENDATION_AND_POLICY_ASKS = ("Can you recommend a {genre} series, and {clause}?", "Any {genre} suggestions? Also, {clause}?")
RELATIVES = ("nephew", "niece", "sister", "brother", "girlfriend", "dad", "best friend", "coworker")


def popular_genre(draw: Draws) -> str:
    return draw.pick([g for g in draw.store.genres if len([p for p in draw.store.products if g in p["genres"]]) > 40])


def genre_ask(draw: Draws) -> GoldenRecord:
    g = popular_genre(draw)
    return new_record(draw, phrase(draw, GENRE_ASKS, genre=g), "recommendation").recommend(draw.rng, g)


def like_series_ask(draw: Draws) -> GoldenRecord:
    s = draw.carried_series(0.8)
    g = s["genres"][0]
    msg = phrase(draw, LIKE_SERIES_ASKS, name=draw.name(s))
    return new_record(draw, msg, "recommendation").recommend(draw.rng, g, s["series"])


def like_not_carried_ask(draw: Draws) -> GoldenRecord:
    s = draw.pick(draw.store.not_carried)
    g = NOT_CARRIED_GENRE[s["series"]]
    msg = phrase(draw, LIKE_NOT_CARRIED_ASKS, name=s["series"])
    r = new_record(draw, msg, "recommendation").not_carried(s["series"], decline=False)
    return r.recommend(draw.rng, g, s["series"])


def gift_ask(draw: Draws) -> GoldenRecord:
    g = popular_genre(draw)
    msg = phrase(draw, GIFT_ASKS, rel=draw.pick(RELATIVES), genre=g, budget=draw.pick((20, 25, 30, 40, 50)))
    return new_record(draw, msg, "recommendation", "detailed", "numbers").recommend(draw.rng, g)


def detailed_ask(draw: Draws) -> GoldenRecord:
    g = popular_genre(draw)
    msg = phrase(draw, DETAILED_ASKS, genre=g, rel=draw.pick(RELATIVES))
    return new_record(draw, msg, "recommendation", "detailed").recommend(draw.rng, g)


def japanese_ask(draw: Draws) -> GoldenRecord:
    if draw.rng.random() < 0.5:
        g = draw.pick(sorted(g for g in GENRE_IN_JAPANESE if g in draw.store.genres))
        msg = phrase(draw, JAPANESE_GENRE_ASKS, genre_ja=GENRE_IN_JAPANESE[g])
        return new_record(draw, msg, "recommendation").recommend(draw.rng, g)
    s, ja = draw.with_alias("ja")
    msg = phrase(draw, JAPANESE_LIKE_SERIES_ASKS, ja=ja)
    return new_record(draw, msg, "recommendation").recommend(draw.rng, s["genres"][0], s["series"])


def romaji_ask(draw: Draws) -> GoldenRecord:
    s, r = draw.with_alias("romaji")
    msg = phrase(draw, ROMAJI_LIKE_SERIES_ASKS, romaji=r)
    return new_record(draw, msg, "recommendation", "simple", "romaji").recommend(draw.rng, s["genres"][0], s["series"])


def slang_ask(draw: Draws) -> GoldenRecord:
    s, g = draw.carried_series(0.9), popular_genre(draw)
    tmpl = draw.pick(SLANG_ASKS)
    r = new_record(draw, draw.fill(tmpl, name=draw.name(s).lower(), genre=g), "recommendation", "simple", "slang")
    return r.recommend(draw.rng, s["genres"][0], s["series"]) if "{name}" in tmpl else r.recommend(draw.rng, g)


def fragment_ask(draw: Draws) -> GoldenRecord:
    s, g = draw.carried_series(0.9), popular_genre(draw)
    tmpl = draw.pick(FRAGMENT_ASKS)
    r = new_record(draw, draw.fill(tmpl, name=draw.name(s).lower(), genre=g), "recommendation", "simple", "fragment")
    return r.recommend(draw.rng, s["genres"][0], s["series"]) if "{name}" in tmpl else r.recommend(draw.rng, g)


def recommendation_and_policy_ask(draw: Draws) -> GoldenRecord:
    g = popular_genre(draw)
    key = draw.pick([k for k, a in ASPECTS.items() if a.clause and a.intent == "policy_faq"])
    msg = phrase(draw, RECOMMENDATION_AND_POLICY_ASKS, genre=g, clause=draw.fill(draw.pick(ASPECTS[key].clause)))
    return new_record(draw, msg, "recommendation", "multi_intent").recommend(draw.rng, g).policy(key)


#: (writer name, writer, how many records); the name seeds the writer's random stream
WRITERS: list[tuple[str, Writer, int]] = [
    ("genre", genre_ask, 6),
    ("like", like_series_ask, 6),
    ("like_nc", like_not_carried_ask, 5),
    ("gift", gift_ask, 4),
    ("detailed", detailed_ask, 3),
    ("ja", japanese_ask, 5),
    ("romaji", romaji_ask, 3),
    ("slang", slang_ask, 3),
    ("fragment", fragment_ask, 3),
    ("multi", recommendation_and_policy_ask, 4),
]
