"""CatalogStore: built from JSONL by the build's writer (model_repository/index/catalog.py), lookups, read-only serving, product mentions with volumes."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest

from contracts.catalog import order_customer
from model_repository.index.catalog import build_catalog, fts5_available
from server.retrieval.store import CatalogStore
from tests.support.requirements import needs

pytestmark = pytest.mark.L0


def _product(asin: str, series: str, volume: int | None, *, title: str | None = None, price: float = 9.99,
             fmt: str = "tankobon") -> dict:  # fmt: skip
    return {
        "asin": asin,
        "title": title or (f"{series}, Vol. {volume}" if volume else series),
        "series": series,
        "volume": volume,
        "author": "Author " + series.split()[0],
        "publisher": "Kodama Press",
        "format": fmt,
        "language": "English",
        "age_rating": "teen",
        "genres": ["action", "adventure"],
        "price": price,
        "stock": 5,
        "release_date": "2021-04-06",
        "description": f"The story of {series}.",
        "review_summary": "Readers enjoyed it.",
    }


CATALOG = [
    _product("B0NARUTO01", "Naruto", 1, price=9.99),
    _product("B0NARUTO02", "Naruto", 2, price=10.99),
    _product("B0NARUTO03", "Naruto", 3, price=11.49),
    _product("B0BORUTO01", "Boruto: Naruto Next Generations", 1, price=9.99),
    _product("B0ONEPCE01", "One Piece", 1, price=8.99),
    _product("B0ONEPCE03", "One Piece", 3, price=8.99),
    _product("B0ONEPCE30", "One Piece", 30, price=12.99),
    _product("B0ONEPCEBX", "One Piece", None, title="One Piece Box Set 1: East Blue", fmt="box_set",
             price=89.99),
    _product("B0FRIEREN2", "Frieren: Beyond Journey's End", 2, price=10.99),
    _product("B0SPYFAM02", "Spy x Family", 2, price=9.99),
    _product("B0MOBPSY02", "Mob Psycho 100", 2, price=12.99),
]
ORDERS = [
    {"order_id": "MA-20481937", "status": "shipped", "carrier": "UPS", "tracking_number": "1Z999",
     "items": ["B0NARUTO01", "B0ONEPCE03"], "placed_at": "2024-05-01", "eta": "2024-05-06"},
    {"order_id": "MA-00000001", "status": "processing", "carrier": None, "tracking_number": None,
     "items": ["B0SPYFAM02"], "placed_at": "2024-05-02", "eta": "2024-05-09"},
]  # fmt: skip


def _write(path, records) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> CatalogStore:
    d = tmp_path_factory.mktemp("store")
    _write(d / "catalog.jsonl", CATALOG)
    _write(d / "orders.jsonl", ORDERS)
    s = CatalogStore(build_catalog(d / "catalog.jsonl", d / "orders.jsonl", d / "catalog.sqlite"))
    yield s
    s.close()


def test_get_product_and_prices(store: CatalogStore) -> None:
    p = store.get_product("B0NARUTO02")
    assert p is not None
    assert (p.title, p.series, p.volume, p.price, p.genres) == (
        "Naruto, Vol. 2", "Naruto", 2, 10.99, ("action", "adventure"),
    )  # fmt: skip
    assert store.get_product("B0ZZZZZZZZ") is None
    assert store.price_of("B0ONEPCEBX") == 89.99
    assert store.price_of("B0ZZZZZZZZ") is None
    assert store.all_asins() == frozenset(p["asin"] for p in CATALOG)
    got = store.get_products(["B0NARUTO01", "B0ZZZZZZZZ", "B0SPYFAM02"])
    assert set(got) == {"B0NARUTO01", "B0SPYFAM02"}
    assert store.get_product("B0ONEPCEBX").volume is None


def owner(order_id: str) -> str:
    return order_customer({"order_id": order_id})


def test_get_order(store: CatalogStore) -> None:
    order = store.get_order("MA-20481937", owner("MA-20481937"))
    assert order == {**ORDERS[0], "customer_id": owner("MA-20481937")}
    assert store.get_order("MA-00000001", owner("MA-00000001"))["carrier"] is None
    assert store.get_order("MA-99999999", owner("MA-99999999")) is None


def test_an_order_is_found_on_its_owners_account_only(store: CatalogStore) -> None:
    assert owner("MA-20481937") != owner("MA-00000001")  # two accounts in the fixture
    assert store.get_order("MA-20481937", owner("MA-00000001")) is None
    assert store.get_order("MA-20481937", "") is None  # anonymous: no orders at all
    assert store.get_order("MA-20481937", "C-1000' OR '1'='1") is None


def test_serving_connection_is_read_only_and_thread_safe(store: CatalogStore) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        store._conn.execute("DELETE FROM products")
    with ThreadPoolExecutor(8) as pool:
        ids = ["MA-20481937", "MA-00000001"] * 50
        results = list(pool.map(store.get_order, ids, map(owner, ids)))
    assert [r["order_id"] for r in results[:2]] == ["MA-20481937", "MA-00000001"]


def _asins(store: CatalogStore, text: str, limit: int = 3) -> list[str]:
    return [p.asin for p in store.find_products(text, limit=limit)]


@pytest.mark.parametrize(
    "text, first",
    [
        ("Do you have One Piece vol 3?", "B0ONEPCE03"),
        ("one piece VOLUME 30 price please", "B0ONEPCE30"),
        ("ONE PIECE #3 in stock?", "B0ONEPCE03"),
        ("one-piece v30", "B0ONEPCE30"),
        ("how much is one piece, vol. 1", "B0ONEPCE01"),
        ("is naruto 2 out in paperback", "B0NARUTO02"),
        ("price of the One Piece Box Set 1: East Blue", "B0ONEPCEBX"),
        ("mob psycho 100 volume 2 release date", "B0MOBPSY02"),
        ("SPY×FAMILY... I mean spy x family vol 2", "B0SPYFAM02"),
    ],
)
def test_find_products_volume_disambiguation(store: CatalogStore, text: str, first: str) -> None:
    assert _asins(store, text)[0] == first


def test_vol_and_volume_spellings_agree(store: CatalogStore) -> None:
    # "vol 3" also matches the full title "One Piece, Vol. 3"; "volume 3" matches series + volume.
    assert _asins(store, "one piece vol 3", limit=10) == _asins(store, "one piece volume 3", limit=10)
    assert _asins(store, "one piece vol 3", limit=10)[0] == "B0ONEPCE03"


def test_same_title_in_two_formats(tmp_path) -> None:
    digital = dict(CATALOG[0], asin="B0NARUTOD1", format="digital", price=4.99)
    _write(tmp_path / "catalog.jsonl", CATALOG[:3] + [digital])
    s = CatalogStore(build_catalog(tmp_path / "catalog.jsonl", None, tmp_path / "c.sqlite"))
    assert set(_asins(s, "Naruto, Vol. 1 price?", limit=2)) == {"B0NARUTO01", "B0NARUTOD1"}


def test_find_products_without_volume_lists_the_series_in_volume_order(store: CatalogStore) -> None:
    assert _asins(store, "tell me about naruto") == ["B0NARUTO01", "B0NARUTO02", "B0NARUTO03"]
    assert _asins(store, "tell me about naruto", limit=1) == ["B0NARUTO01"]


def test_longest_match_wins(store: CatalogStore) -> None:
    # "Naruto" inside "Boruto: Naruto Next Generations" is not a separate mention.
    assert _asins(store, "is Boruto - Naruto Next Generations any good?") == ["B0BORUTO01"]


def test_several_series_alternate(store: CatalogStore) -> None:
    found = _asins(store, "compare naruto vol 3 with one piece vol 1", limit=4)
    assert found[:2] == ["B0ONEPCE01", "B0NARUTO03"]  # longest mention first, each with its volume
    assert len(found) == 4


def test_no_false_mentions(store: CatalogStore) -> None:
    assert _asins(store, "which one is cheaper?") == []
    assert _asins(store, "where is my order") == []
    assert _asins(store, "") == []
    assert _asins(store, "naruto", limit=0) == []


@needs("sqlite-fts5", fts5_available(), "the partial-name fallback is an FTS5 query")
def test_fts_fallback_for_partial_series_names(store: CatalogStore) -> None:
    assert _asins(store, "is frieren journeys end vol 2 any good") == ["B0FRIEREN2"]


def test_build_rejects_bad_records(tmp_path) -> None:
    bad = dict(CATALOG[0], asin="X0BAD")
    _write(tmp_path / "catalog.jsonl", [CATALOG[1], bad])
    with pytest.raises(ValueError, match=r"catalog.jsonl:2: .*bad asin"):
        build_catalog(tmp_path / "catalog.jsonl", None, tmp_path / "c.sqlite")
    _write(tmp_path / "catalog.jsonl", [CATALOG[1], CATALOG[1]])
    with pytest.raises(ValueError, match="duplicate"):
        build_catalog(tmp_path / "catalog.jsonl", None, tmp_path / "c.sqlite")
    _write(tmp_path / "orders.jsonl", [dict(ORDERS[0], order_id="MA-1")])
    _write(tmp_path / "catalog.jsonl", CATALOG)
    with pytest.raises(ValueError, match="bad order_id"):
        build_catalog(tmp_path / "catalog.jsonl", tmp_path / "orders.jsonl", tmp_path / "c.sqlite")
    assert not (tmp_path / "c.sqlite").exists()  # nothing half-built left behind
    with pytest.raises(FileNotFoundError):
        CatalogStore(tmp_path / "c.sqlite")


def test_rebuild_replaces_the_file(tmp_path) -> None:
    _write(tmp_path / "catalog.jsonl", CATALOG[:2])
    first = CatalogStore(build_catalog(tmp_path / "catalog.jsonl", None, tmp_path / "c.sqlite"))
    _write(tmp_path / "catalog.jsonl", CATALOG[:3])
    second = CatalogStore(build_catalog(tmp_path / "catalog.jsonl", None, tmp_path / "c.sqlite"))
    assert len(first.all_asins()) == 2 and len(second.all_asins()) == 3
    assert second.get_order("MA-20481937", owner("MA-20481937")) is None
