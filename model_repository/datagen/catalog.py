"""The generated manga catalog: ~150 fictional series plus the real series customers name, each sold as
volumes in several editions.

Every product is a row of ``catalog.jsonl`` (layout: model_repository/catalog_schema.py). Fictional series are invented (a hand-written
list plus pattern-generated names) with Japanese-style author names; real series
(``real_series.CARRIED``) keep their real title, author and English publisher, while the store's editions,
prices, stock and dates are generated like the rest. Each description carries facts that tell one product
apart from its siblings (volume number, arc, characters, chapters, page count, format extras) so retrieval
and reranking have something to discriminate on. ``series_records`` lists every series with the names
customers use for it, including the well-known series the store does not carry (``carried: false``).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from model_repository.datagen.real_series import CARRIED, NOT_CARRIED

N_SERIES = 150
FORMATS = ("tankobon", "omnibus", "box_set", "digital")
AGE_RATINGS = ("All Ages", "Teen", "Older Teen", "Mature")
TRANSLATED_LANGUAGES = ("Japanese", "Spanish", "French", "German", "Italian", "Portuguese")
PUBLISHERS = (
    "Kodama Press", "Sakura Leaf Comics", "Blue Lantern Media", "Tsukimi Books", "Kurogane Publishing",
    "Starfall Manga", "Hoshizora Editions", "Paper Crane Comics", "Ginga House", "Red Torii Publishing",
)

_FAMILY = (
    "Arisawa", "Kurosaki", "Tanabe", "Mizushima", "Hayashida", "Okamura", "Shinohara", "Fujikawa", "Nakagawa",
    "Sakuraba", "Takemura", "Inoue", "Yoshizawa", "Morikawa", "Kanzaki", "Hoshino", "Amamiya", "Kitagawa",
    "Onodera", "Sawamura", "Tsukishima", "Hidaka", "Minase", "Kamiya", "Ishikawa", "Nishimura", "Ogata",
    "Asahina", "Kuroda", "Shiraishi", "Tachibana", "Yamabuki", "Ebisawa", "Kagami", "Maeda", "Hanamura",
)
_GIVEN = (
    "Haruki", "Yuna", "Ren", "Aoi", "Sota", "Mio", "Kaito", "Hinata", "Riku", "Sakura", "Daichi", "Emi",
    "Takumi", "Nanami", "Yuto", "Akari", "Shun", "Kaede", "Ryo", "Misaki", "Kenta", "Hikari", "Itsuki",
    "Chiyo", "Touya", "Rin", "Makoto", "Asuka", "Jun", "Fuyumi", "Kazuki", "Noa", "Sora", "Tomoe",
)

# (name, genres, setting) — hand-written series; the rest are pattern-generated below.
_HANDWRITTEN_SERIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("Blade of the Crimson Tide", ("shonen", "action", "adventure"), "a pirate archipelago"),
    ("Ramen Samurai Academy", ("shonen", "comedy", "cooking"), "a culinary boarding school"),
    ("Moonlit Bakery on Fourth Street", ("josei", "slice of life", "romance"), "a late-night bakery"),
    ("Iron Lotus Protocol", ("mecha", "seinen", "sci-fi"), "an orbital colony at war"),
    ("The Ninth Lantern", ("horror", "seinen", "mystery"), "a mountain village with a cursed shrine"),
    ("Reincarnated as a Vending Machine Knight", ("isekai", "comedy", "fantasy"), "a sword-and-sorcery kingdom"),
    ("Spike Point!!", ("sports", "shonen"), "a high school volleyball club"),
    ("Letters to the Winter Garden", ("shojo", "romance", "drama"), "a snowy coastal town"),
    ("Neon Yokai Detective Agency", ("seinen", "mystery", "supernatural"), "a rain-soaked Tokyo of 2089"),
    ("Cafe Hoshizora", ("slice of life", "josei"), "a rooftop cafe"),
    ("Ashfall Chronicle", ("seinen", "fantasy", "action"), "a continent buried under volcanic ash"),
    ("My Roommate Is a Retired Demon Lord", ("isekai", "comedy", "romance"), "a cramped Osaka apartment"),
    ("Starlight Idol Revolution", ("shojo", "music", "drama"), "a cutthroat idol academy"),
    ("The Quiet Chess Club", ("slice of life", "sports"), "a rural middle school"),
    ("Hollow Tide Requiem", ("horror", "seinen", "psychological"), "a fishing town swallowed by fog"),
    ("Gearheart Frontier", ("mecha", "shonen", "adventure"), "a desert of buried war machines"),
    ("Cherry Blossom Contract", ("josei", "romance", "drama"), "a Kyoto wedding agency"),
    ("Tokyo Night Pitch", ("sports", "seinen"), "an amateur baseball league"),
    ("The Alchemist's Lunchbox", ("fantasy", "cooking", "slice of life"), "a guild town of potion makers"),
    ("Ghost Train to Kisaragi", ("horror", "mystery"), "a train line that appears only at 2 a.m."),
    ("Sword Saint of the Seventh Floor", ("isekai", "action", "fantasy"), "an endless tower dungeon"),
    ("Paper Moon Orchestra", ("shojo", "music", "slice of life"), "a struggling student orchestra"),
    ("Kitsune Post Office", ("slice of life", "supernatural"), "a village where foxes deliver the mail"),
    ("Dragon Accountant", ("seinen", "comedy", "fantasy"), "a kingdom drowning in paperwork"),
    ("Last Summer at Hanabi Beach", ("romance", "drama"), "a seaside town during festival season"),
    ("Steel Rain Battalion", ("mecha", "seinen", "military"), "a drowned future Europe"),
    ("Hearts on Ice Ring", ("sports", "shojo", "romance"), "a figure skating academy"),
    ("The Bookshop at the End of the World", ("slice of life", "fantasy", "josei"), "a post-apocalyptic library"),
    ("Shadow Ninja Homeroom", ("shonen", "action", "comedy"), "a secret ninja high school"),
    ("Witchcraft and Wasabi", ("fantasy", "cooking", "shojo"), "a witch-run sushi restaurant"),
    ("Crimson Lotus Cartel", ("seinen", "crime", "action"), "the Yokohama underworld"),
    ("Boundary of the Silver Moon", ("fantasy", "shonen", "adventure"), "a world split by a glass wall"),
    ("Salaryman Reborn as a Slime Tamer", ("isekai", "comedy"), "a farming village in another world"),
    ("Midnight Laundromat", ("josei", "slice of life", "drama"), "a 24-hour laundromat in Sapporo"),
    ("Gakuen Exorcist Club", ("shonen", "supernatural", "comedy"), "a haunted prep school"),
    ("Fox Fire Rebellion", ("shonen", "fantasy", "action"), "a shogunate ruled by spirits"),
    ("Velvet Detective Kagami", ("mystery", "seinen"), "Showa-era Tokyo"),
    ("Rooftop Gardeners", ("slice of life", "shojo"), "a high school gardening club"),
    ("Orbit of the Lost Pilots", ("mecha", "sci-fi", "drama"), "a derelict space carrier"),
    ("The Undertaker's Apprentice", ("horror", "josei", "drama"), "a Meiji-era funeral parlor"),
    ("Beast Tamer Hotline", ("isekai", "fantasy", "comedy"), "a call center for monster tamers"),
    ("Goal Line Brothers", ("sports", "shonen", "drama"), "a rugby team on its last season"),
    ("Snowbound Inn Mysteries", ("mystery", "slice of life"), "a hot-spring inn cut off by snow"),
    ("Sugar Rush Patisserie", ("shojo", "cooking", "romance"), "a Paris pastry school"),
    ("Thousand Year Samurai", ("seinen", "historical", "action"), "Sengoku-era Japan"),
    ("Pixel Heroes Online", ("isekai", "shonen", "sci-fi"), "a VRMMO that players cannot log out of"),
    ("Clockwork Shrine Maiden", ("fantasy", "shojo", "supernatural"), "a steampunk shrine city"),
    ("Bad Luck Boxing Gym", ("sports", "seinen", "comedy"), "a failing boxing gym in Osaka"),
    ("Under the Jellyfish Moon", ("romance", "josei", "slice of life"), "an aquarium in Enoshima"),
    ("Requiem for the Red Queen", ("horror", "fantasy", "seinen"), "a vampire-ruled city-state"),
)

_ADJ = ("Crimson", "Silver", "Hollow", "Eternal", "Broken", "Azure", "Forgotten", "Golden", "Midnight",
        "Scarlet", "Iron", "Frozen", "Wandering", "Ivory", "Obsidian", "Emerald", "Shattered", "Gentle")
_NOUN = ("Blade", "Crown", "Requiem", "Oath", "Lantern", "Garden", "Tower", "Compass", "Ballad", "Tide",
         "Feather", "Citadel", "Promise", "Mirror", "Serpent", "Harbor", "Star", "Bell")
_NOUN2 = ("Dawn", "Abyss", "Empire", "Sea", "Moon", "Storm", "Forest", "Kingdom", "Sky", "River", "Wolf", "Phoenix")
_ROLE = ("Samurai", "Witch", "Knight", "Detective", "Chef", "Idol", "Pilot", "Exorcist", "Swordsman",
         "Florist", "Alchemist", "Ninja", "Courier", "Librarian", "Blacksmith", "Priestess")
_FOOD = ("Ramen", "Onigiri", "Curry", "Mochi", "Tempura", "Dango", "Sushi", "Taiyaki", "Okonomiyaki", "Udon")
_PLACE = ("Kamakura", "Hakodate", "Nagasaki", "Shibuya", "Otaru", "Naha", "Kanazawa", "Sendai", "Nara", "Beppu")
_CREATURE = ("Dragon", "Ghost", "Kappa", "Vampire", "Tanuki", "Robot", "Mermaid", "Werewolf", "Golem")
_RELATION = ("Boss", "Neighbor", "Homeroom Teacher", "Fiance", "Landlord", "Little Sister", "Classmate")
_THING = ("Teapot", "Sword", "Castle", "Spider", "Mailbox", "Haunted Doll", "Dungeon Door", "Lighthouse")
_SPORT = (("Spike", "volleyball"), ("Fast Break", "basketball"), ("Hat Trick", "soccer"), ("Home Run", "baseball"),
          ("Full Swing", "tennis"), ("Match Point", "badminton"), ("Photo Finish", "track and field"))

_PATTERNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("{noun} of the {adj} {noun2}", ("shonen", "fantasy", "action")),
    ("{food} {role} Academy", ("shonen", "comedy", "cooking")),
    ("The {adj} {role}", ("seinen", "action", "drama")),
    ("My {relation} Is a {creature}", ("romance", "comedy", "supernatural")),
    ("Reincarnated as a {thing} in Another World", ("isekai", "comedy", "fantasy")),
    ("{place} {role} Diaries", ("slice of life", "josei")),
    ("{adj} {noun}: {role} of {place}", ("shojo", "fantasy", "romance")),
    ("Steel {noun2} Unit {greek}", ("mecha", "sci-fi", "seinen")),
    ("The {creature} of {place} Station", ("horror", "mystery")),
    ("{sport}!! {place} High", ("sports", "shonen")),
    ("Last Train to {place}", ("josei", "drama", "romance")),
    ("{adj} {noun2} Requiem", ("horror", "seinen", "psychological")),
    ("The {role} Who Hated {hated}", ("comedy", "slice of life", "shojo")),
    ("{place} After the Rain", ("josei", "romance", "drama")),
    ("Kiss Me, {role}!", ("shojo", "romance", "comedy")),
    ("{count} Days Until the {noun}", ("seinen", "mystery", "psychological")),
    ("{adj} {noun} Chronicles", ("fantasy", "adventure", "shonen")),
    ("Guild of the {adj} {noun}", ("isekai", "fantasy", "action")),
    ("Café {place} {noun2}", ("slice of life", "cooking")),
    ("Operation {noun2} Zero", ("mecha", "military", "sci-fi")),
    ("The {creature} Next Door", ("comedy", "supernatural", "slice of life")),
    ("Cursed Class {count}-B", ("horror", "shonen", "supernatural")),
)
_MAX_PER_PATTERN = 6
_HATED = ("Mondays", "Mornings", "Magic", "Weddings", "Summer", "Homework", "Heroes", "Rain")
_COUNT = ("Three", "Seven", "Twelve", "Forty", "Ninety", "Thirty")
_GREEK = ("Alpha", "Sigma", "Omega", "Delta", "Zeta", "Kappa")

_ARC_WORDS = ("Ashen Harbor", "Glass Labyrinth", "Red Festival", "Northern Siege", "Lost Summer", "Iron Tournament",
              "Moonless Night", "Sky Prison", "Cherry Storm", "Final Exam", "Sunken Temple", "Black Market",
              "Homecoming", "Twin Blades", "Frozen Crown", "Masquerade", "Underground Arena", "Time Skip",
              "Clockwork City", "Graveyard Shift", "Championship", "Traitor's Oath", "Paper Lantern", "Eclipse")
_VILLAIN_TITLES = ("the Masked Admiral", "the Pale Abbot", "General Kurogane", "the Witch of Thorns",
                   "the Archivist", "the Smiling Judge", "the Iron Regent", "Lady Nue", "the Hollow King",
                   "rival captain Daigo", "the Syndicate boss Ogre", "the Silent Twin")
_PLOT = ("fights to keep a promise made to a dying mentor", "uncovers a conspiracy inside the academy",
         "tries to win back a lost friendship", "trains for the tournament that decides everything",
         "protects a mysterious girl who can read memories", "searches for the truth about a vanished sister",
         "struggles to keep the family business afloat", "learns that the enemy was once an ally",
         "navigates a first love that nobody approves of", "hunts the monster that destroyed their hometown",
         "must choose between loyalty and justice", "races to break a curse before the next full moon")
_EXTRAS = ("a fold-out color poster", "an illustrated art book", "exclusive character postcards",
           "a bonus short story", "an acrylic stand", "a sticker sheet", "a signed print reproduction")
_PRAISE = ("the detailed, kinetic art", "the emotional payoff", "the sharp comedic timing", "the worldbuilding",
           "the slow-burn romance", "the fight choreography", "the creepy atmosphere", "the translation quality",
           "the character growth", "the cozy pacing", "the clever mysteries", "the mecha designs")
_GRIPE = ("the pacing drags in the middle chapters", "the paper quality is thin", "the cliffhanger is brutal",
          "the fanservice is distracting", "the side characters get little page time",
          "the translation notes are sparse", "the print is slightly small in the omnibus",
          "the ending of the arc feels rushed", "the exposition is heavy")


@dataclass
class Series:
    name: str
    genres: tuple[str, ...]
    setting: str
    author: str
    publisher: str
    age_rating: str
    hero: str
    ally: str
    villain: str
    arcs: tuple[str, ...]
    n_volumes: int
    start: date
    chapters_per_volume: int
    translations: tuple[str, ...] = field(default_factory=tuple)
    aliases: tuple[str, ...] = ()  # other names customers use (real series: Japanese script, romaji, short forms)
    real: bool = False

    def arc_of(self, volume: int) -> str:
        per = max(1, -(-self.n_volumes // len(self.arcs)))
        return self.arcs[min(len(self.arcs) - 1, (volume - 1) // per)]


def _person(rng: random.Random) -> str:
    return f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"


def _generated_name(rng: random.Random, uses: dict[str, int]) -> tuple[str, tuple[str, ...]] | None:
    pattern, genres = rng.choice(_PATTERNS)
    if uses.get(pattern, 0) >= _MAX_PER_PATTERN:
        return None
    sport, sport_genre = rng.choice(_SPORT)
    name = pattern.format(
        noun=rng.choice(_NOUN), noun2=rng.choice(_NOUN2), adj=rng.choice(_ADJ), role=rng.choice(_ROLE),
        food=rng.choice(_FOOD), place=rng.choice(_PLACE), creature=rng.choice(_CREATURE),
        relation=rng.choice(_RELATION), thing=rng.choice(_THING), greek=rng.choice(_GREEK), sport=sport,
        hated=rng.choice(_HATED), count=rng.choice(_COUNT),
    )
    uses[pattern] = uses.get(pattern, 0) + 1
    if pattern.startswith("{sport}"):
        genres = genres + (sport_genre,)
    return name, genres


def _age_rating(rng: random.Random, genres: tuple[str, ...]) -> str:
    if {"horror", "psychological", "crime"} & set(genres):
        return rng.choice(("Older Teen", "Mature", "Mature"))
    if "seinen" in genres:
        return rng.choice(("Teen", "Older Teen", "Mature"))
    if {"slice of life", "cooking"} & set(genres) and "josei" not in genres:
        return rng.choice(("All Ages", "All Ages", "Teen"))
    return rng.choice(("All Ages", "Teen", "Teen", "Older Teen"))


def make_series(rng: random.Random) -> list[Series]:
    """Build the series list (hand-written ones first, then unique generated names)."""
    specs: list[tuple[str, tuple[str, ...], str]] = list(_HANDWRITTEN_SERIES)
    seen = {name for name, _, _ in specs}
    settings = [s for _, _, s in _HANDWRITTEN_SERIES]
    uses: dict[str, int] = {}
    while len(specs) < N_SERIES:
        made = _generated_name(rng, uses)
        if made is None or made[0] in seen:
            continue
        name, genres = made
        seen.add(name)
        specs.append((name, genres, rng.choice(settings)))
    # A pool of authors smaller than the series count, so some authors have several series
    # (the "same author" hard negatives in the triples need that).
    authors = sorted({_person(rng) for _ in range(110)})
    out: list[Series] = []
    for name, genres, setting in specs:
        n_vol = rng.choice((3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 18))
        arcs = tuple(rng.sample(_ARC_WORDS, k=min(4, max(2, n_vol // 3))))
        start = date(2006, 1, 1) + timedelta(days=rng.randrange(0, 365 * 18))
        n_trans = rng.choice((0, 0, 1, 1, 2))
        out.append(
            Series(
                name=name, genres=genres, setting=setting, author=rng.choice(authors),
                publisher=rng.choice(PUBLISHERS), age_rating=_age_rating(rng, genres),
                hero=_person(rng), ally=_person(rng), villain=rng.choice(_VILLAIN_TITLES), arcs=arcs,
                n_volumes=n_vol, start=start, chapters_per_volume=rng.choice((6, 7, 8, 9, 10, 12)),
                translations=tuple(rng.sample(TRANSLATED_LANGUAGES, k=n_trans)),
            )
        )
    out.extend(_real_series(rng, authors))
    return out


def _real_series(rng: random.Random, fictional_authors: list[str]) -> list[Series]:
    """The carried real series: real title/author/publisher/characters, generated store facts."""
    out = []
    for r in CARRIED:
        n_vol = r.max_volumes
        out.append(
            Series(
                name=r.name, genres=r.genres, setting=r.setting, author=r.author, publisher=r.publisher,
                age_rating=_age_rating(rng, r.genres), hero=r.hero, ally=r.ally,
                villain=rng.choice(_VILLAIN_TITLES), arcs=tuple(rng.sample(_ARC_WORDS, k=min(4, max(2, n_vol // 3)))),
                n_volumes=n_vol, start=date(2006, 1, 1) + timedelta(days=rng.randrange(0, 365 * 18)),
                chapters_per_volume=rng.choice((8, 9, 10, 11)),
                translations=tuple(rng.sample(TRANSLATED_LANGUAGES, k=rng.choice((0, 1, 1, 2)))),
                aliases=r.aliases, real=True,
            )
        )
    return out


def series_records(series: list[Series]) -> list[dict[str, Any]]:
    """``series.jsonl``: every series the store carries, then the real ones it does not; sorted by name."""
    def record(name: str, author: str, aliases: tuple[str, ...], genres: tuple[str, ...], carried: bool, real: bool):
        return {"series": name, "author": author, "carried": carried, "real": real, "aliases": list(aliases),
                "genres": list(genres)}

    rows = [record(s.name, s.author, s.aliases, s.genres, True, s.real) for s in series]
    rows += [record(r.name, r.author, r.aliases, r.genres, False, True) for r in NOT_CARRIED]
    return sorted(rows, key=lambda r: r["series"])


def _asin(rng: random.Random, used: set[str]) -> str:
    alphabet = string.ascii_uppercase + string.digits
    while True:
        asin = "B0" + "".join(rng.choice(alphabet) for _ in range(8))
        if asin not in used:
            used.add(asin)
            return asin


def _review(rng: random.Random, s: Series, label: str) -> str:
    rating = round(rng.uniform(3.4, 4.9), 1)
    n = rng.randrange(12, 2400)
    first = rng.choice((
        f"Readers praise {rng.choice(_PRAISE)} in {label}.",
        f"Fans call {label} a highlight of the series, especially {rng.choice(_PRAISE)}.",
        f"Most reviewers single out {rng.choice(_PRAISE)} and {s.hero.split()[0]}'s growth in {label}.",
        f"{label} is a favorite among readers for {rng.choice(_PRAISE)}.",
    ))
    parts = [first]
    if rng.random() < 0.7:
        parts.append(f"Some readers note that {rng.choice(_GRIPE)}.")
    if rng.random() < 0.6:
        parts.append(f"Average rating {rating}/5 from {n} reviews.")
    return " ".join(parts)


def _pages(rng: random.Random, fmt: str) -> int:
    return {"tankobon": rng.randrange(176, 232, 8), "digital": rng.randrange(176, 232, 8),
            "omnibus": rng.randrange(520, 720, 8), "box_set": 0}[fmt]


def _description(rng: random.Random, s: Series, fmt: str, vol: int | None, language: str, last_vol: int) -> str:
    hero, ally = s.hero, s.ally
    sentences: list[str] = []
    if fmt == "box_set":
        sentences.append(
            f"The complete {s.name} box set collects volumes 1-{s.n_volumes} of {s.author}'s "
            f"{s.genres[0]} series set in {s.setting}."
        )
        sentences.append(f"It follows {hero} from the {s.arcs[0]} arc through the {s.arcs[-1]} arc finale.")
        sentences.append(f"The slipcase box also includes {rng.choice(_EXTRAS)}.")
    elif fmt == "omnibus":
        first_vol = (vol - 1) * 3 + 1
        sentences.append(
            f"Omnibus volume {vol} of {s.name} collects original volumes {first_vol}-{last_vol} in one "
            f"{_pages(rng, fmt)}-page edition."
        )
        sentences.append(
            f"{hero} {rng.choice(_PLOT)} while the {s.arc_of(first_vol)} arc builds toward a clash with {s.villain}."
        )
        sentences.append(f"This larger-trim omnibus includes {rng.randrange(4, 17, 2)} color pages.")
    else:
        assert vol is not None
        c0 = (vol - 1) * s.chapters_per_volume + 1
        c1 = vol * s.chapters_per_volume
        sentences.append(
            f"In volume {vol} of {s.name}, {hero} {rng.choice(_PLOT)} during the {s.arc_of(vol)} arc."
        )
        sentences.append(rng.choice((
            f"{ally} returns with a secret that changes how {hero.split()[0]} sees {s.villain}.",
            f"{hero.split()[0]} and {ally} finally face {s.villain} in {s.setting}.",
            f"A new rival forces {hero.split()[0]} to question everything {ally} taught them.",
            f"Meanwhile {ally} makes a deal with {s.villain} that could cost everything.",
        )))
        edition = "digital edition" if fmt == "digital" else f"{language} tankobon"
        sentences.append(f"This {edition} collects chapters {c0}-{c1} and runs {_pages(rng, fmt)} pages.")
        if fmt == "digital":
            sentences.append("It includes the color chapter-opening pages and downloads instantly to any device.")
        elif rng.random() < 0.5:
            sentences.append(f"Includes translation notes and {rng.choice(_EXTRAS)}.")
    if rng.random() < 0.4:
        sentences.append(f"Rated {s.age_rating}.")
    return " ".join(sentences)


def _product(
    rng: random.Random, used: set[str], s: Series, fmt: str, vol: int | None, language: str, released: date
) -> dict[str, Any]:
    last_vol = min(s.n_volumes, (vol or 1) * 3)
    if fmt == "box_set":
        title = f"{s.name} Complete Box Set (Vols. 1-{s.n_volumes})"
        price = round(s.n_volumes * rng.uniform(8.0, 10.5), 0) - 0.01
        stock = rng.randrange(0, 40)
    elif fmt == "omnibus":
        title = f"{s.name} Omnibus, Vol. {vol} (Vols. {(vol - 1) * 3 + 1}-{last_vol})"
        price = rng.choice((17.99, 19.99, 21.99, 24.99))
        stock = rng.randrange(0, 80)
    elif fmt == "digital":
        title = f"{s.name}, Vol. {vol} (Digital Edition)"
        price = rng.choice((6.99, 7.49, 7.99, 8.99, 9.99))
        stock = 9999
    else:
        suffix = "" if language == "English" else f" ({language} Edition)"
        title = f"{s.name}, Vol. {vol}{suffix}"
        price = rng.choice((9.99, 10.99, 11.99, 12.99, 13.99, 14.99))
        stock = 0 if rng.random() < 0.12 else rng.randrange(1, 220)
    return {
        "asin": _asin(rng, used),
        "title": title,
        "series": s.name,
        "volume": vol,
        "author": s.author,
        "publisher": s.publisher,
        "format": fmt,
        "language": language,
        "age_rating": s.age_rating,
        "genres": list(s.genres),
        "price": round(float(price), 2),
        "stock": int(stock),
        "release_date": released.isoformat(),
        "description": _description(rng, s, fmt, vol, language, last_vol),
        "review_summary": _review(rng, s, title),
    }


def generate_catalog(rng: random.Random) -> tuple[list[dict[str, Any]], list[Series]]:
    """Products sorted by ASIN, plus the series they came from (the intent/triple generators use both)."""
    series = make_series(rng)
    used: set[str] = set()
    products: list[dict[str, Any]] = []
    for s in series:
        gap = rng.choice((60, 75, 90, 120))
        vol_dates = [s.start + timedelta(days=gap * i) for i in range(s.n_volumes)]
        for v in range(1, s.n_volumes + 1):
            products.append(_product(rng, used, s, "tankobon", v, "English", vol_dates[v - 1]))
            if rng.random() < 0.6:
                products.append(_product(rng, used, s, "digital", v, "English", vol_dates[v - 1]))
        for lang in s.translations:
            for v in range(1, min(s.n_volumes, rng.randrange(2, 7)) + 1):
                released = vol_dates[v - 1] + timedelta(days=rng.randrange(30, 400))
                products.append(_product(rng, used, s, "tankobon", v, lang, released))
        if s.n_volumes >= 6 and rng.random() < 0.6:
            for o in range(1, s.n_volumes // 3 + 1):
                products.append(_product(rng, used, s, "omnibus", o, "English", vol_dates[o * 3 - 1] + timedelta(days=540)))
        if rng.random() < 0.55:
            products.append(_product(rng, used, s, "box_set", None, "English", vol_dates[-1] + timedelta(days=180)))
    products.sort(key=lambda p: p["asin"])
    return products, series
