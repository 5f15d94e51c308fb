"""The ``/_sim`` admin API: ground truth consistent with what ccxt saw, bad input refused with
a clear 400, faults replaced/shown/cleared, reset; and the ``python -m simulator`` process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from decimal import Decimal as D
from pathlib import Path

import ccxt
import pytest

from simulator import FaultPlan, FaultRule, VenueConfig
from tests.helpers_venue import (
    admin,
    binance_client,
    install_faults,
    running_venue,
    signed_binance,
)
from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def venue():
    with running_venue(seed=2) as handle:
        yield handle


@pytest.fixture(autouse=True)
def clean(venue):
    admin(venue.url, "/_sim/reset", "POST")
    yield
    admin(venue.url, "/_sim/faults", "DELETE")


def admin_refusal(url: str, path: str, method: str = "GET", raw: bytes | None = None) -> dict:
    """The JSON body of a 400 answer (any other status fails the test)."""
    request = urllib.request.Request(url + path, data=raw, method=method)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=5)
    assert info.value.code == 400
    return json.loads(info.value.read())


def admin_error(url: str, path: str, method: str = "GET", raw: bytes | None = None) -> str:
    return admin_refusal(url, path, method, raw)["error"]


def test_orders_trades_balances_agree_with_ccxt(venue):
    exchange = binance_client(venue.url)
    exchange.load_markets()
    resting = exchange.create_order("ETH/USDT", "limit", "buy", 0.5, 1000)
    filled = exchange.create_order("ETH/USDT", "market", "sell", 0.3)
    orders = admin(venue.url, "/_sim/orders?account=demo-key")
    assert [str(o["id"]) for o in orders] == [resting["id"], filled["id"]]
    keys = {"account", "id", "client_order_id", "symbol", "side", "type", "price", "amount",
            "filled", "status", "created_at"}
    assert keys <= set(orders[0])
    assert orders[0]["client_order_id"] == resting["clientOrderId"]
    assert (orders[0]["status"], orders[1]["status"]) == ("new", "filled")
    assert D(orders[1]["filled"]) == D("0.3") and orders[1]["price"] is None
    trades = admin(venue.url, "/_sim/trades?account=demo-key")
    assert {t["order_id"] for t in trades} == {int(filled["id"])}
    balances = admin(venue.url, "/_sim/balances")
    assert {"demo-key", "house", "fees", "withdrawn"} <= set(balances)
    assert D(balances["demo-key"]["USDT"]["locked"]) == D("500")
    assert D(balances["fees"]["USDT"]["free"]) > 0
    # the same account is reachable by its Nobitex token
    assert admin(venue.url, "/_sim/orders?account=demo-token") == orders
    assert admin(venue.url, "/_sim/audit")["problems"] == []


def test_reset_returns_to_start(venue):
    start = admin(venue.url, "/_sim/balances")["demo-key"]
    exchange = binance_client(venue.url)
    exchange.load_markets()
    exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "error_503"}])
    admin(venue.url, "/_sim/reset", "POST")
    assert admin(venue.url, "/_sim/balances")["demo-key"] == start
    assert admin(venue.url, "/_sim/orders?account=demo-key") == []
    assert admin(venue.url, "/_sim/faults")["rules"] == []


def test_faults_replace_show_clear(venue):
    plan = {"seed": 9, "rules": [
        {"endpoint": "create_order", "fault": "lose_response", "probability": 0.3},
        {"endpoint": "*", "fault": "latency", "latency_ms": 5, "jitter_ms": 5}]}
    shown = admin(venue.url, "/_sim/faults", "POST", plan)
    assert shown["seed"] == 9 and shown["rules"] == plan["rules"]
    assert shown["stats"] == [{"seen": 0, "fired": 0}] * 2
    replaced = install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "error_500"}])
    assert len(replaced["rules"]) == 1
    urllib.request.urlopen(venue.url + "/api/v3/ping").read()
    assert admin(venue.url, "/_sim/faults")["stats"] == [{"seen": 0, "fired": 0}]
    assert admin(venue.url, "/_sim/faults", "DELETE")["rules"] == []


@pytest.mark.parametrize("raw, fragment", [
    (b"not json", "not JSON"),
    (b"[]", "must be an object"),
    (b'{"rules": [{"endpoint": "nope", "fault": "ban"}]}', "unknown endpoint"),
    (b'{"rules": [{"endpoint": "*", "fault": "explode"}]}', "unknown fault"),
    (b'{"rules": [{"endpoint": "*", "fault": "ban", "probability": 2}]}', "probability"),
    (b'{"rules": [{"endpoint": "*", "fault": "ban", "latency_ms": 5}]}', "do not apply"),
    (b'{"rules": [{"endpoint": "*", "fault": "balance_drift", "currency": "BTC"}]}',
     "needs currency and amount"),
    (b'{"rules": [{"endpoint": "*", "fault": "ban", "count": -1}]}', "count"),
    (b'{"seed": "x", "rules": []}', "seed"),
    (b'{"rules": [], "extra": 1}', "unknown keys"),
])
def test_bad_fault_plans_are_refused_and_change_nothing(venue, raw, fragment):
    install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "latency"}])
    assert fragment in admin_error(venue.url, "/_sim/faults", "POST", raw)
    assert admin(venue.url, "/_sim/faults")["rules"][0]["fault"] == "latency"


DRIFT = '{"endpoint": "*", "fault": "balance_drift", "currency": "BTC", "amount": "1"'


@pytest.mark.parametrize("rule, field", [
    (DRIFT.replace('"1"', '"NaN"') + "}", "rules[0].amount"),
    (DRIFT.replace('"1"', '"Infinity"') + "}", "rules[0].amount"),
    (DRIFT.replace('"1"', "1e400") + "}", "rules[0].amount"),
    (DRIFT.replace('"1"', '"1e400"') + "}", "rules[0].amount"),
    (DRIFT.replace('"BTC"', "7") + "}", "rules[0].currency"),
    (DRIFT.replace('"BTC"', '"DOGE"') + "}", "rules[0].currency"),
    (DRIFT + ', "target_account": ["x"]}', "rules[0].target_account"),
    (DRIFT + ', "target_account": "ghost"}', "rules[0].target_account"),
    ('{"endpoint": "*", "fault": "error_503", "account": ["x"]}', "rules[0].account"),
    ('{"endpoint": "*", "fault": "error_503", "account": "ghost"}', "rules[0].account"),
    ('{"endpoint": "*", "fault": "error_503", "probability": NaN}', "rules[0].probability"),
    ('{"endpoint": ["*"], "fault": "error_503"}', "rules[0].endpoint"),
    ('{"endpoint": "*", "fault": "hang", "hang_s": 1e999}', "rules[0].hang_s"),
])
def test_bad_rule_values_are_400_naming_the_field(venue, rule, field):
    install_faults(venue.url, [{"endpoint": "fetch_ticker", "fault": "latency"}])
    before = admin(venue.url, "/_sim/faults")
    body = admin_refusal(venue.url, "/_sim/faults", "POST",
                         ('{"seed": 1, "rules": [' + rule + "]}").encode())
    assert body["field"] == field and body["error"].startswith(field + ": ")
    assert admin(venue.url, "/_sim/faults") == before


def test_unknown_account_is_a_400(venue):
    assert "unknown account" in admin_error(venue.url, "/_sim/orders?account=ghost")
    assert "unknown account" in admin_error(venue.url, "/_sim/trades?account=ghost")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cli_serves_config_file_and_stops_cleanly_on_sigterm(tmp_path):
    config = tmp_path / "venue.toml"
    config.write_text('seed = 4\n[[accounts]]\napi_key = "alice"\nsecret = "alice-secret"\n'
                      'balances = { USDT = "1000" }\n'
                      '[faults]\nseed = 3\nrules = [{ endpoint = "fetch_order_book", '
                      'fault = "error_503" }]\n')
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", "--port", str(port), "--config", str(config)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        def answering() -> bool:
            assert process.poll() is None, "the venue process exited"
            try:
                admin(url, "/_sim/health")
            except OSError:
                return False
            return True

        wait_until(answering, 20, "the venue answering", interval=0.05)
        balances = admin(url, "/_sim/balances")
        assert balances["alice"]["USDT"]["free"] == "1000" and "demo-key" in balances
        assert admin(url, "/_sim/faults")["rules"][0]["fault"] == "error_503"
        alice = binance_client(url, api_key="alice", secret="alice-secret")
        alice.load_markets()
        assert alice.fetch_balance()["USDT"]["free"] == 1000
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=15)[0].decode()
    assert process.returncode == 0, output
    assert "venue stopped" in output


@pytest.mark.parametrize("toml, message", [
    ('[[markets]]\nsymbol = "BTC/USDT"\ntick_size = 0.01\n', "write decimals as strings"),
    ('[faults]\nrules = [{ endpoint = "*", fault = "balance_drift", currency = "BTC", '
     'amount = "NaN" }]\n', "faults.rules[0].amount: "),
    ('[faults]\nrules = [{ endpoint = "*", fault = "error_503", account = "ghost" }]\n',
     "rules[0].account: "),
    ('markets = 5\n', "markets: "),
])
def test_cli_rejects_a_bad_config_with_exit_2(tmp_path, toml, message):
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    result = subprocess.run([sys.executable, "-m", "simulator", "--port", str(free_port()),
                             "--config", str(config)], cwd=ROOT, capture_output=True,
                            timeout=30, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 2, result.stderr.decode()
    assert message in result.stderr.decode()
    assert b"Traceback" not in result.stderr


MARKET_BUY = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.001"}
TIME_KEYS = {"created_at", "updated_at", "time", "transactTime", "workingTime"}


def without_times(value):  # noqa: ANN001, ANN201 - JSON in, JSON out
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k not in TIME_KEYS}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


def observable_state(url: str) -> dict:
    """Everything a client or the admin API can see, then one order with a venue-generated
    client order id (times dropped: the two venues run at different moments)."""
    exchange = binance_client(url)
    state = {"balances": admin(url, "/_sim/balances"), "faults": admin(url, "/_sim/faults"),
             "book": exchange.public_get_depth({"symbol": "BTCUSDT", "limit": 20}),
             "orders": admin(url, "/_sim/orders"), "trades": admin(url, "/_sim/trades"),
             "placed": signed_binance(url, "POST", "/api/v3/order", MARKET_BUY)}
    state["after"] = admin(url, "/_sim/orders")
    return without_times(state)


def test_reset_returns_the_whole_venue_to_a_fresh_venues_state():
    """Engine, faults (ban included) and dialect state such as Binance's generated client
    order ids: after activity and a reset, nothing tells the venue from a fresh one."""
    config = VenueConfig(seed=7, requote_interval_ms=10**9)
    plan = FaultPlan(2, (FaultRule("fetch_ticker", "latency", latency_ms=1),))
    with running_venue(config, faults=plan) as used:
        exchange = binance_client(used.url)
        exchange.load_markets()
        for _ in range(3):
            signed_binance(used.url, "POST", "/api/v3/order", MARKET_BUY)
        exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 50000)
        exchange.fetch_ticker("BTC/USDT")
        install_faults(used.url, [{"endpoint": "fetch_balance", "fault": "ban", "ban_s": 60},
                                  {"endpoint": "*", "fault": "balance_drift",
                                   "currency": "USDT", "amount": "5"}])
        with pytest.raises(ccxt.DDoSProtection):
            exchange.fetch_balance()
        admin(used.url, "/_sim/reset", "POST")
        after_reset = observable_state(used.url)
    with running_venue(config, faults=plan) as fresh:
        assert after_reset == observable_state(fresh.url)
    assert after_reset["placed"]["clientOrderId"] == "venue1"
