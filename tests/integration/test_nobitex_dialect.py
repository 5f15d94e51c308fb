"""The venue's Nobitex dialect spoken to directly over HTTP: formats, units and limitations.

These pin what the adapter relies on and what a real Nobitex client would see: wire figures
in rials (engine tomans x 10), failures as HTTP 200 ``status: failed``, client ids visible to
``orders/status`` only while the order is open, the list filters and pagination.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
import requests

from simulator.nobitex import NobitexDialect
from simulator.server import RunningVenue, serve_in_thread

TOKEN = "demo-token"
AUTH = {"Authorization": "Token " + TOKEN}
D = Decimal


@pytest.fixture(scope="module")
def running() -> Iterator[RunningVenue]:
    venue = serve_in_thread(dialects=[NobitexDialect()])
    try:
        yield venue
    finally:
        venue.stop()


@pytest.fixture
def venue(running: RunningVenue) -> RunningVenue:
    requests.post(running.url + "/_sim/reset", timeout=5).raise_for_status()
    requests.delete(running.url + "/_sim/faults", timeout=5).raise_for_status()
    return running


def post(venue: RunningVenue, path: str, body: dict, headers: dict | None = None
         ) -> requests.Response:
    return requests.post(venue.url + path, json=body, headers=AUTH if headers is None else headers,
                         timeout=5)


def get(venue: RunningVenue, path: str, params: dict | None = None) -> requests.Response:
    return requests.get(venue.url + path, params=params, headers=AUTH, timeout=5)


def resting_rial_price(venue: RunningVenue) -> Decimal:
    """A BTC/IRT buy price (tomans) 10 % under the reference, on the tick."""
    engine = venue.venue.engine
    tick = engine.market("BTC/IRT").tick_size
    return (engine.reference_price("BTC/IRT") * D("0.9") / tick).to_integral_value() * tick


def add(venue: RunningVenue, **fields: object) -> dict:
    body = {"type": "buy", "srcCurrency": "btc", "dstCurrency": "rls", "amount": "0.001"}
    body.update({k: v for k, v in fields.items() if v is not None})
    response = post(venue, "/market/orders/add", body)
    assert response.status_code == 200, response.text
    return response.json()


def test_options_list_markets_in_wire_units(venue: RunningVenue) -> None:
    body = get(venue, "/v2/options").json()
    assert body["status"] == "ok"
    config = body["nobitex"]
    spec = venue.venue.engine.market("BTC/IRT")
    assert D(config["pricePrecisions"]["BTCIRT"]) == spec.tick_size * 10
    assert D(config["amountPrecisions"]["BTCIRT"]) == spec.step_size
    assert D(config["minOrders"]["rls"]) == spec.min_notional * 10
    assert "ETHBTC" not in config["pricePrecisions"]
    assert {"coin": "rls", "name": "Rial", "stdName": "\ufdfc"} in body["coins"]


def test_rial_market_rules_on_the_wire_are_nobitexs(venue: RunningVenue) -> None:
    """Nobitex's published values (nobitex/docs-api, /v2/options and the SmallOrder error):
    rial prices step by 10 rials, the minimum order is 3 000 000 rials (300 000 tomans)."""
    config = get(venue, "/v2/options").json()["nobitex"]
    assert config["minOrders"]["rls"] == "3000000"
    assert config["pricePrecisions"]["BTCIRT"] == "10"
    assert config["pricePrecisions"]["USDTIRT"] == "10"
    assert config["amountPrecisions"]["BTCIRT"] == "0.000001"
    price = resting_rial_price(venue) * 10                  # rials, about 5.4e10
    assert price * D("0.00006") > 3_000_000 > price * D("0.00005")
    assert add(venue, price=str(price), amount="0.00006")["status"] == "ok"
    small = add(venue, price=str(price), amount="0.00005")
    assert (small["status"], small["code"]) == ("failed", "SmallOrder")


def test_prices_on_the_wire_are_rials(venue: RunningVenue) -> None:
    engine = venue.venue.engine
    stats = get(venue, "/market/stats", {"srcCurrency": "btc", "dstCurrency": "rls"}).json()
    assert set(stats["stats"]) == {"btc-rls"}
    assert D(stats["stats"]["btc-rls"]["bestBuy"]) == engine.ticker("BTC/IRT").bid * 10
    book = get(venue, "/v3/orderbook/BTCIRT").json()
    assert D(book["bids"][0][0]) == engine.order_book("BTC/IRT", 1).bids[0][0] * 10
    assert D(book["asks"][0][0]) > D(book["bids"][0][0])
    tether = get(venue, "/v3/orderbook/BTCUSDT").json()
    assert D(tether["bids"][0][0]) == engine.order_book("BTC/USDT", 1).bids[0][0]
    everything = get(venue, "/v3/orderbook/all").json()
    assert {"BTCIRT", "BTCUSDT", "USDTIRT"} <= set(everything)


def test_unknown_symbol_is_a_failed_answer(venue: RunningVenue) -> None:
    response = get(venue, "/v3/orderbook/DOGEIRT")
    assert response.status_code == 200
    assert response.json()["status"] == "failed"


def test_wallets_in_rials(venue: RunningVenue) -> None:
    wallets = {w["currency"]: w for w in get(venue, "/users/wallets/list").json()["wallets"]}
    irt = venue.venue.engine.balance("demo-key", "IRT")
    assert D(wallets["rls"]["activeBalance"]) == irt.free * 10
    assert D(wallets["rls"]["balance"]) == irt.total * 10
    assert D(wallets["btc"]["activeBalance"]) == venue.venue.engine.balance("demo-key",
                                                                             "BTC").free


def test_missing_or_unknown_token_is_401(venue: RunningVenue) -> None:
    for headers in ({}, {"Authorization": "Token nope"}, {"Authorization": "Bearer " + TOKEN}):
        response = requests.get(venue.url + "/users/wallets/list", headers=headers, timeout=5)
        assert response.status_code == 401
        assert response.json()["message"] == "Invalid token."


def test_order_answer_shape_and_rial_price(venue: RunningVenue) -> None:
    price = resting_rial_price(venue)
    body = add(venue, price=str(price * 10), clientOrderId="shape-1")
    assert body["status"] == "ok"
    order = body["order"]
    assert order["status"] == "Active"
    assert order["execution"] == "Limit"
    assert order["market"] == "BTC-RLS"
    assert order["dstCurrency"] == "\ufdfc"
    assert D(order["price"]) == price * 10
    assert order["clientOrderId"] == "shape-1"
    (truth,) = venue.venue.engine.orders("demo-key")
    assert truth.price == price
    assert order["id"] == truth.id


def test_amount_rounds_down_and_price_rounds_to_the_tick(venue: RunningVenue) -> None:
    price = resting_rial_price(venue)
    add(venue, amount="0.0012349", price=str(price * 10 + 4))
    (truth,) = venue.venue.engine.orders("demo-key")
    assert truth.amount == D("0.001234")
    assert truth.price == price


def test_form_encoded_body_is_accepted(venue: RunningVenue) -> None:
    price = resting_rial_price(venue)
    response = requests.post(venue.url + "/market/orders/add", headers=AUTH, timeout=5, data={
        "type": "buy", "srcCurrency": "btc", "dstCurrency": "rls", "amount": "0.001",
        "price": str(price * 10)})
    assert response.json()["status"] == "ok"


@pytest.mark.parametrize(("fields", "code"), [
    ({"amount": "0.000001", "price": "1000"}, "SmallOrder"),
    ({"amount": "1000", "price": "700000000000"}, "OverValueOrder"),
    ({"srcCurrency": "doge"}, "InvalidMarketPair"),
    ({"price": None}, "InvalidOrderPrice"),
])
def test_refusals_are_http_200_failed_with_the_docs_codes(venue: RunningVenue, fields: dict,
                                                          code: str) -> None:
    body = {"price": str(resting_rial_price(venue) * 10)}
    body.update(fields)
    answer = add(venue, **body)
    assert answer["status"] == "failed"
    assert answer["code"] == code
    assert venue.venue.engine.orders("demo-key") == []


def test_duplicate_client_order_id_only_among_open_orders(venue: RunningVenue) -> None:
    price = str(resting_rial_price(venue) * 10)
    first = add(venue, price=price, clientOrderId="twice")["order"]
    again = add(venue, price=price, amount="0.002", clientOrderId="twice")
    assert again["code"] == "DuplicateClientOrderId"
    post(venue, "/market/orders/update-status", {"order": first["id"], "status": "canceled"})
    assert add(venue, price=price, amount="0.003", clientOrderId="twice")["status"] == "ok"


def test_identical_order_within_ten_seconds_is_duplicate_order(venue: RunningVenue) -> None:
    price = str(resting_rial_price(venue) * 10)
    assert add(venue, price=price, clientOrderId="a")["status"] == "ok"
    answer = add(venue, price=price, clientOrderId="b")
    assert (answer["status"], answer["code"]) == ("failed", "DuplicateOrder")
    assert add(venue, price=price, amount="0.002")["status"] == "ok"  # not identical
    assert add(venue, price=price, clientOrderId="c", pro="yes")["status"] == "ok"
    assert len(venue.venue.engine.orders("demo-key")) == 3


def test_malformed_requests_are_http_400(venue: RunningVenue) -> None:
    for body in ({"type": "hold", "srcCurrency": "btc", "dstCurrency": "rls", "amount": "1"},
                 {"type": "buy", "srcCurrency": "btc", "dstCurrency": "rls", "amount": "lots"},
                 {"type": "buy", "srcCurrency": "btc", "dstCurrency": "rls", "amount": "1",
                  "price": "1", "clientOrderId": "c" * 33}):
        response = post(venue, "/market/orders/add", body)
        assert response.status_code == 400
        assert response.json()["status"] == "failed"


def test_status_finds_client_ids_only_among_open_orders(venue: RunningVenue) -> None:
    filled = add(venue, execution="market", clientOrderId="gone")["order"]
    assert filled["status"] == "Done"
    by_client = post(venue, "/market/orders/status", {"clientOrderId": "gone"}).json()
    assert by_client == {"status": "failed", "code": "NotFound", "message": "Order not found"}
    by_id = post(venue, "/market/orders/status", {"id": filled["id"]}).json()
    assert by_id["order"]["clientOrderId"] == "gone"
    assert by_id["order"]["status"] == "Done"
    cancel = post(venue, "/market/orders/update-status",
                  {"clientOrderId": "gone", "status": "canceled"}).json()
    assert cancel["code"] == "NotFound"
    neither = post(venue, "/market/orders/status", {}).json()
    assert neither["code"] == "NullIdAndClientOrderId"


@pytest.mark.parametrize("bad_id", [
    lambda i: i + 0.5, lambda i: f"{i}.5", lambda i: float(i), lambda i: f"{i}.0",
    lambda i: True, lambda i: [i], lambda i: {"id": i}, lambda i: -i, lambda i: f" {i}",
    lambda i: "1e3", lambda i: "",
])
def test_non_integer_order_ids_are_refused_not_truncated(venue: RunningVenue, bad_id) -> None:
    """``1.5`` must not mean order 1: a malformed id is a failure, and nothing is canceled."""
    resting = add(venue, price=str(resting_rial_price(venue) * 10))["order"]
    for path, key, extra in (("/market/orders/status", "id", {}),
                             ("/market/orders/update-status", "order", {"status": "canceled"})):
        response = post(venue, path, {key: bad_id(resting["id"]), **extra})
        assert response.status_code == 400, response.text
        assert response.json()["status"] == "failed"
        assert response.json()["code"] == "ParseError"
    status = post(venue, "/market/orders/status", {"id": str(resting["id"])}).json()
    assert status["order"]["status"] == "Active"


def test_cancel_of_a_done_order_is_refused(venue: RunningVenue) -> None:
    filled = add(venue, execution="market")["order"]
    answer = post(venue, "/market/orders/update-status",
                  {"order": filled["id"], "status": "canceled"}).json()
    assert answer["status"] == "failed"
    assert answer["code"] == "InvalidOrderStatus"


def test_order_list_filters_sorting_and_details(venue: RunningVenue) -> None:
    price = str(resting_rial_price(venue) * 10)
    resting = add(venue, price=price)["order"]
    done = add(venue, execution="market")["order"]
    canceled = add(venue, price=price, amount="0.002")["order"]
    post(venue, "/market/orders/update-status", {"order": canceled["id"], "status": "canceled"})

    def ids(**params: object) -> list[int]:
        orders = get(venue, "/market/orders/list", {"details": 2, **params}).json()["orders"]
        return [o["id"] for o in orders]

    assert ids() == [resting["id"]]  # default status: open
    assert ids(status="all") == [canceled["id"], done["id"], resting["id"]]  # newest first
    assert ids(status="all", order="id") == [resting["id"], done["id"], canceled["id"]]
    assert ids(status="done") == [done["id"]]
    assert set(ids(status="close")) == {done["id"], canceled["id"]}
    assert ids(status="all", pageSize=1, page=2) == [done["id"]]
    assert ids(status="all", srcCurrency="btc", dstCurrency="usdt") == []
    brief = get(venue, "/market/orders/list", {"status": "all"}).json()["orders"]
    assert all("id" not in o and "status" not in o for o in brief)  # details=1, as the docs say


def test_trade_list_newest_first_with_pages(venue: RunningVenue) -> None:
    for amount in ("0.001", "0.002", "0.003"):
        assert add(venue, execution="market", amount=amount)["status"] == "ok"
    truth = venue.venue.engine.fills("demo-key", "BTC/IRT")
    body = get(venue, "/market/trades/list", {"srcCurrency": "btc", "dstCurrency": "rls",
                                              "pageSize": 2}).json()
    assert body["hasNext"] is (len(truth) > 2)
    assert [t["id"] for t in body["trades"]] == [f.trade_id for f in reversed(truth)][:2]
    first = body["trades"][0]
    last_fill = truth[-1]
    assert D(first["price"]) == last_fill.price * 10
    assert D(first["total"]) == last_fill.quote_amount * 10
    assert D(first["fee"]) == last_fill.fee  # a buy pays its fee in BTC
    half = get(venue, "/market/trades/list", {"srcCurrency": "btc"})
    assert half.status_code == 400


def test_public_trades_show_each_trade_once(venue: RunningVenue) -> None:
    add(venue, execution="market", amount="0.003")
    trades = get(venue, "/v2/trades/BTCIRT").json()["trades"]
    mine = venue.venue.engine.fills("demo-key", "BTC/IRT")
    assert sum(D(t["volume"]) for t in trades) == sum(f.amount for f in mine)
    assert all(t["type"] == "buy" for t in trades)


def test_faults_can_target_the_token_holder_account(venue: RunningVenue) -> None:
    get(venue, "/v2/options")  # the dialect meets its venue on its first request
    rules = [{"endpoint": "fetch_balance", "fault": "error_503", "account": "demo-key"}]
    requests.post(venue.url + "/_sim/faults", json={"seed": 1, "rules": rules},
                  timeout=5).raise_for_status()
    assert get(venue, "/users/wallets/list").status_code == 503
    stranger = requests.get(venue.url + "/users/wallets/list", timeout=5,
                            headers={"Authorization": "Token other"})
    assert stranger.status_code == 401  # another account: no fault, just refused


def test_rate_limit_fault_body(venue: RunningVenue) -> None:
    rules = [{"endpoint": "fetch_open_orders", "fault": "rate_limit", "retry_after_s": 9}]
    requests.post(venue.url + "/_sim/faults", json={"seed": 1, "rules": rules},
                  timeout=5).raise_for_status()
    response = get(venue, "/market/orders/list")
    assert response.status_code == 429
    body = response.json()
    assert (body["status"], body["code"], body["backOff"]) == ("failed", "TooManyRequests", 9)
