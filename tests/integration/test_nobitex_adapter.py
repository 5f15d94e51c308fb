"""Our ccxt Nobitex class against the venue's Nobitex dialect over real HTTP.

Every method and every error path, each checked against the venue's ground truth (the
``/_sim`` admin API and the engine the venue runs), never against the adapter's own opinion.
Unified ``IRT`` figures are tomans, like the engine's; the wire between them is in rials.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from decimal import Decimal

import ccxt
import pytest
import requests

from exchanges import Nobitex, RateLimitBackOff, VenueBan, create_client
from exchanges.errors import ListIncomplete
from simulator.nobitex import NobitexDialect
from simulator.server import RunningVenue, serve_in_thread

ACCOUNT = "demo-key"
TOKEN = "demo-token"
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
    """The module's venue, back at its start state with no faults."""
    requests.post(running.url + "/_sim/reset", timeout=5).raise_for_status()
    requests.delete(running.url + "/_sim/faults", timeout=5).raise_for_status()
    return running


@pytest.fixture
def client(venue: RunningVenue) -> Nobitex:
    nobitex = create_client("nobitex", url=venue.url, token=TOKEN, timeout_ms=5000)
    nobitex.load_markets()
    return nobitex


def admin(venue: RunningVenue, what: str) -> object:
    response = requests.get(f"{venue.url}/_sim/{what}", params={"account": ACCOUNT}, timeout=5)
    response.raise_for_status()
    return response.json()


def install_faults(venue: RunningVenue, *rules: dict) -> None:
    response = requests.post(venue.url + "/_sim/faults", json={"seed": 7, "rules": list(rules)},
                             timeout=5)
    response.raise_for_status()


def passive_buy_price(venue: RunningVenue, symbol: str = "BTC/IRT") -> Decimal:
    """A price 10 % under the book, on the tick: rests without filling."""
    engine = venue.venue.engine
    tick = engine.market(symbol).tick_size
    return (engine.reference_price(symbol) * D("0.9") / tick).to_integral_value() * tick


# --------------------------------------------------------------------------- market data


def test_load_markets_serves_rial_and_tether_markets(client: Nobitex, venue: RunningVenue) -> None:
    assert {"BTC/IRT", "USDT/IRT", "BTC/USDT", "ETH/USDT"} <= set(client.symbols)
    assert "ETH/BTC" not in client.symbols  # Nobitex quotes only rls and usdt
    spec = venue.venue.engine.market("BTC/IRT")
    market = client.market("BTC/IRT")
    assert (market["id"], market["baseId"], market["quoteId"]) == ("BTCIRT", "btc", "rls")
    assert D(market["precision"]["price"]) == spec.tick_size
    assert D(market["precision"]["amount"]) == spec.step_size
    assert D(market["limits"]["cost"]["min"]) == spec.min_notional


def test_fetch_ticker_matches_the_engine(client: Nobitex, venue: RunningVenue) -> None:
    ticker = client.fetch_ticker("BTC/IRT")
    truth = venue.venue.engine.ticker("BTC/IRT")
    assert ticker["symbol"] == "BTC/IRT"
    assert D(ticker["bid"]) == truth.bid
    assert D(ticker["ask"]) == truth.ask
    assert D(ticker["last"]) == truth.last
    assert D(ticker["bid"]) < D(ticker["ask"])


def test_fetch_order_book_matches_the_engine(client: Nobitex, venue: RunningVenue) -> None:
    book = client.fetch_order_book("BTC/USDT", limit=5)
    truth = venue.venue.engine.order_book("BTC/USDT", 5)
    assert [[D(p), D(q)] for p, q in book["bids"]] == [list(level) for level in truth.bids]
    assert [[D(p), D(q)] for p, q in book["asks"]] == [list(level) for level in truth.asks]
    irt = client.fetch_order_book("BTC/IRT")
    assert D(irt["bids"][0][0]) == venue.venue.engine.order_book("BTC/IRT", 1).bids[0][0]


def test_fetch_balance_matches_the_engine_in_tomans(client: Nobitex, venue: RunningVenue) -> None:
    balance = client.fetch_balance()
    truth = admin(venue, "balances")[ACCOUNT]
    for code in ("IRT", "BTC", "USDT"):
        assert D(balance[code]["free"]) == D(truth[code]["free"])
        assert D(balance[code]["used"]) == D(truth[code]["locked"])


# --------------------------------------------------------------------------- orders


def test_limit_order_lifecycle(client: Nobitex, venue: RunningVenue) -> None:
    price = passive_buy_price(venue)
    order = client.create_order("BTC/IRT", "limit", "buy", "0.001", str(price),
                                {"clientOrderId": "life-1"})
    assert order["status"] == "open"
    assert order["clientOrderId"] == "life-1"
    assert D(order["price"]) == price
    (truth,) = admin(venue, "orders")
    assert truth["id"] == int(order["id"])
    assert truth["client_order_id"] == "life-1"
    assert D(truth["price"]) == price
    assert D(truth["amount"]) == D("0.001")

    by_id = client.fetch_order(order["id"], "BTC/IRT")
    by_client_id = client.fetch_order(None, "BTC/IRT", {"clientOrderId": "life-1"})
    assert by_id["id"] == by_client_id["id"] == order["id"]
    assert [o["id"] for o in client.fetch_open_orders("BTC/IRT")] == [order["id"]]
    (anywhere,) = client.fetch_open_orders()  # no symbol: the order names its own market
    assert (anywhere["id"], anywhere["symbol"]) == (order["id"], "BTC/IRT")
    assert D(client.fetch_balance()["IRT"]["used"]) == price * D("0.001")

    canceled = client.cancel_order(order["id"], "BTC/IRT")
    assert canceled["status"] == "canceled"
    (truth,) = admin(venue, "orders")
    assert truth["status"] == "canceled"
    assert client.fetch_open_orders("BTC/IRT") == []
    assert D(client.fetch_balance()["IRT"]["used"]) == 0


def test_cancel_by_client_order_id(client: Nobitex, venue: RunningVenue) -> None:
    price = passive_buy_price(venue, "BTC/USDT")
    client.create_order("BTC/USDT", "limit", "buy", "0.001", str(price), {"clientOrderId": "c-2"})
    canceled = client.cancel_order(None, "BTC/USDT", {"clientOrderId": "c-2"})
    assert canceled["status"] == "canceled"
    assert admin(venue, "orders")[0]["status"] == "canceled"


def test_open_client_id_is_found_by_status_without_the_list(client: Nobitex,
                                                            venue: RunningVenue) -> None:
    client.create_order("BTC/IRT", "limit", "buy", "0.001", str(passive_buy_price(venue)),
                        {"clientOrderId": "open-1"})
    install_faults(venue, {"endpoint": "fetch_open_orders", "fault": "error_503"})
    order = client.fetch_order(None, "BTC/IRT", {"clientOrderId": "open-1"})
    assert order["status"] == "open"


def test_market_order_fills_and_is_found_by_client_id_through_the_list(
        client: Nobitex, venue: RunningVenue) -> None:
    order = client.create_order("BTC/IRT", "market", "buy", "0.002", None,
                                {"clientOrderId": "mkt-1"})
    assert order["status"] == "closed"
    assert D(order["filled"]) == D("0.002")
    # orders/status no longer sees the client id of a closed order; the list does
    found = client.fetch_order(None, "BTC/IRT", {"clientOrderId": "mkt-1"})
    assert found["id"] == order["id"]
    assert found["status"] == "closed"
    truth_trades = admin(venue, "trades")
    assert D(found["filled"]) == sum(D(t["amount"]) for t in truth_trades)
    assert D(found["cost"]) == sum(D(t["cost"]) for t in truth_trades)
    assert D(found["fee"]["cost"]) == sum(D(t["fee"]) for t in truth_trades)
    assert found["fee"]["currency"] == "BTC"

    mine = client.fetch_my_trades("BTC/IRT")
    assert sorted(t["id"] for t in mine) == sorted(str(t["id"]) for t in truth_trades)
    by_id = {str(t["id"]): t for t in truth_trades}
    for trade in mine:
        truth = by_id[trade["id"]]
        assert trade["order"] == order["id"]
        assert D(trade["price"]) == D(truth["price"])
        assert D(trade["amount"]) == D(truth["amount"])
        assert D(trade["cost"]) == D(truth["cost"])
        assert D(trade["fee"]["cost"]) == D(truth["fee"])
        assert trade["fee"]["currency"] == truth["fee_currency"] == "BTC"
    assert client.fetch_my_trades("BTC/USDT") == []

    public = client.fetch_trades("BTC/IRT")
    assert {(D(t["price"]), D(t["amount"])) for t in public} >= {
        (D(t["price"]), D(t["amount"])) for t in truth_trades}


def test_sell_fee_is_in_tomans(client: Nobitex, venue: RunningVenue) -> None:
    client.create_order("BTC/IRT", "market", "sell", "0.001")
    (trade,) = client.fetch_my_trades("BTC/IRT")
    (truth,) = admin(venue, "trades")
    assert trade["fee"]["currency"] == "IRT"
    assert D(trade["fee"]["cost"]) == D(truth["fee"])


# --------------------------------------------------------------------------- refusals


def test_insufficient_funds_places_nothing(client: Nobitex, venue: RunningVenue) -> None:
    with pytest.raises(ccxt.InsufficientFunds):
        client.create_order("BTC/USDT", "limit", "sell", "1000", "70000")
    assert admin(venue, "orders") == []


def test_small_order_is_invalid_order(client: Nobitex, venue: RunningVenue) -> None:
    with pytest.raises(ccxt.InvalidOrder) as caught:
        client.create_order("BTC/IRT", "limit", "buy", "0.000001", str(passive_buy_price(venue)))
    assert "SmallOrder" in str(caught.value)
    assert admin(venue, "orders") == []


def test_duplicate_client_order_id_among_open_orders(client: Nobitex,
                                                     venue: RunningVenue) -> None:
    price = str(passive_buy_price(venue))
    client.create_order("BTC/IRT", "limit", "buy", "0.001", price, {"clientOrderId": "dup"})
    with pytest.raises(ccxt.DuplicateOrderId):
        client.create_order("BTC/IRT", "limit", "buy", "0.002", price, {"clientOrderId": "dup"})
    assert len(admin(venue, "orders")) == 1


def test_identical_order_within_ten_seconds_is_refused(client: Nobitex,
                                                        venue: RunningVenue) -> None:
    price = str(passive_buy_price(venue))
    client.create_order("BTC/IRT", "limit", "buy", "0.001", price, {"clientOrderId": "one"})
    with pytest.raises(ccxt.InvalidOrder) as caught:
        client.create_order("BTC/IRT", "limit", "buy", "0.001", price, {"clientOrderId": "two"})
    assert "DuplicateOrder" in str(caught.value)
    client.create_order("BTC/IRT", "limit", "buy", "0.001", price,
                        {"clientOrderId": "three", "pro": "yes"})
    assert [o["client_order_id"] for o in admin(venue, "orders")] == ["one", "three"]


def test_unknown_order(client: Nobitex) -> None:
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order("987654", "BTC/IRT")
    with pytest.raises(ccxt.OrderNotFound):
        client.fetch_order(None, "BTC/IRT", {"clientOrderId": "never-sent"})
    with pytest.raises(ccxt.OrderNotFound):
        client.cancel_order("987654", "BTC/IRT")


def test_cancel_of_a_filled_order_is_invalid_order(client: Nobitex) -> None:
    order = client.create_order("BTC/USDT", "market", "buy", "0.001")
    with pytest.raises(ccxt.InvalidOrder) as caught:
        client.cancel_order(order["id"], "BTC/USDT")
    assert not isinstance(caught.value, ccxt.OrderNotFound)


def test_bad_token_is_authentication_error(venue: RunningVenue) -> None:
    stranger = create_client("nobitex", url=venue.url, token="not-a-token", timeout_ms=5000)
    stranger.load_markets()  # public: no token needed
    with pytest.raises(ccxt.AuthenticationError):
        stranger.fetch_balance()
    with pytest.raises(ccxt.AuthenticationError):
        stranger.create_order("BTC/USDT", "market", "buy", "0.001")
    assert admin(venue, "orders") == []


def test_failures_are_http_200_with_status_failed(venue: RunningVenue) -> None:
    response = requests.post(
        venue.url + "/market/orders/add", timeout=5,
        headers={"Authorization": "Token " + TOKEN},
        json={"type": "buy", "srcCurrency": "btc", "dstCurrency": "rls", "amount": "0.000001",
              "price": "1000"})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "failed"
    assert body["code"] == "SmallOrder"


# --------------------------------------------------------------------------- faults


def test_rate_limit_carries_back_off_seconds(client: Nobitex, venue: RunningVenue) -> None:
    install_faults(venue, {"endpoint": "fetch_balance", "fault": "rate_limit",
                           "retry_after_s": 12, "count": 1})
    with pytest.raises(RateLimitBackOff) as caught:
        client.fetch_balance()
    assert caught.value.retry_after_seconds == 12
    assert isinstance(caught.value, ccxt.RateLimitExceeded)
    client.fetch_balance()  # count 1: the next call passes


def test_ban_is_ddos_protection_with_its_remaining_time(client: Nobitex,
                                                        venue: RunningVenue) -> None:
    install_faults(venue, {"endpoint": "fetch_ticker", "fault": "ban", "ban_s": 120, "count": 1})
    with pytest.raises(VenueBan) as caught:
        client.fetch_ticker("BTC/IRT")
    assert 119 <= caught.value.retry_after_seconds <= 120
    assert isinstance(caught.value, ccxt.DDoSProtection)
    with pytest.raises(VenueBan):  # the ban covers every endpoint until it ends
        client.fetch_balance()


@pytest.mark.parametrize(("fault", "error"), [
    ("error_500", ccxt.ExchangeNotAvailable),
    ("error_502", ccxt.ExchangeNotAvailable),
    ("error_503", ccxt.ExchangeNotAvailable),
    ("maintenance", ccxt.OnMaintenance),
])
def test_server_faults(client: Nobitex, venue: RunningVenue, fault: str, error: type) -> None:
    install_faults(venue, {"endpoint": "fetch_order_book", "fault": fault})
    with pytest.raises(error):
        client.fetch_order_book("BTC/IRT")


def test_hang_is_request_timeout(venue: RunningVenue) -> None:
    impatient = create_client("nobitex", url=venue.url, token=TOKEN, timeout_ms=300)
    impatient.load_markets()
    install_faults(venue, {"endpoint": "fetch_open_orders", "fault": "hang", "hang_s": 5})
    with pytest.raises(ccxt.RequestTimeout):
        impatient.fetch_open_orders("BTC/IRT")


def test_lost_response_is_network_error_while_the_order_exists(client: Nobitex,
                                                               venue: RunningVenue) -> None:
    install_faults(venue, {"endpoint": "create_order", "fault": "lose_response", "count": 1})
    with pytest.raises(ccxt.NetworkError):
        client.create_order("BTC/IRT", "market", "buy", "0.001", None,
                            {"clientOrderId": "lost-1"})
    (truth,) = admin(venue, "orders")
    assert truth["client_order_id"] == "lost-1"
    assert truth["status"] == "filled"
    recovered = client.fetch_order(None, "BTC/IRT", {"clientOrderId": "lost-1"})
    assert recovered["id"] == str(truth["id"])
    assert recovered["status"] == "closed"


def test_the_token_is_never_logged(venue: RunningVenue, caplog: pytest.LogCaptureFixture) -> None:
    chatty = create_client("nobitex", url=venue.url, token=TOKEN, timeout_ms=5000)
    with caplog.at_level(logging.DEBUG):
        chatty.load_markets()
        chatty.fetch_balance()
        with pytest.raises(ccxt.InsufficientFunds):
            chatty.create_order("BTC/USDT", "limit", "sell", "1000", "70000")
    assert "Authorization" in caplog.text  # ccxt did log the request headers
    assert TOKEN not in caplog.text


# --------------------------------------------------------------------------- paged order list


def _count_list_calls(client: Nobitex) -> list[dict]:
    """Record each orders/list request the client sends (its parameters)."""
    sent: list[dict] = []
    original = client.privateGetMarketOrdersList

    def counting(params: dict | None = None, *rest: object) -> object:
        sent.append(dict(params or {}))
        return original(params, *rest)

    client.privateGetMarketOrdersList = counting  # type: ignore[method-assign]
    return sent


def test_open_orders_are_read_to_the_end_of_the_paged_list(client: Nobitex,
                                                            venue: RunningVenue) -> None:
    price = passive_buy_price(venue)
    placed = {client.create_order("BTC/IRT", "limit", "buy", f"0.00{n}", str(price))["id"]
              for n in range(1, 8)}
    client.options["fetchOpenOrdersPageSize"] = 3
    sent = _count_list_calls(client)
    assert {o["id"] for o in client.fetch_open_orders()} == placed
    assert len(sent) == 3  # 3 + 3 + 1: the short page is the end
    assert [s.get("fromId") for s in sent][0] is None and all(s.get("fromId") for s in sent[1:])


def test_an_open_orders_list_longer_than_allowed_is_an_error_not_a_short_answer(
        client: Nobitex, venue: RunningVenue) -> None:
    price = passive_buy_price(venue)
    for n in range(1, 8):
        client.create_order("BTC/IRT", "limit", "buy", f"0.00{n}", str(price))
    client.options.update(fetchOpenOrdersPageSize=3, fetchOpenOrdersMaxPages=2)
    with pytest.raises(ListIncomplete):
        client.fetch_open_orders()


def test_a_client_id_search_that_did_not_reach_the_end_is_not_order_not_found(
        client: Nobitex, venue: RunningVenue) -> None:
    for n in range(1, 6):  # filled at once: orders/status no longer sees their client ids
        client.create_order("BTC/IRT", "market", "buy", f"0.00{n}", None,
                            {"clientOrderId": f"old-{n}"})
    client.options.update(fetchOrderByClientIdPageSize=2, fetchOrderByClientIdMaxPages=2)
    with pytest.raises(ListIncomplete):  # newest first: old-1 is on page 3
        client.fetch_order(None, "BTC/IRT", {"clientOrderId": "old-1"})
    found = client.fetch_order(None, "BTC/IRT", {"clientOrderId": "old-4"})
    assert D(found["amount"]) == D("0.004")
    client.options["fetchOrderByClientIdMaxPages"] = 3
    assert client.fetch_order(None, "BTC/IRT", {"clientOrderId": "old-1"})["status"] == "closed"
    with pytest.raises(ccxt.OrderNotFound):  # the whole list was read: absent for sure
        client.fetch_order(None, "BTC/IRT", {"clientOrderId": "never-placed"})
