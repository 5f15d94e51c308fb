"""Start the venue in-process for tests, and build stock ``ccxt.binance`` clients against it.

``with running_venue(seed=1) as venue: ...`` gives a handle with ``.url``, ``.venue`` (the
``simulator.Venue``: engine, faults), ``.stop()``; it is stopped on exit. ``binance_client``
returns stock ccxt.binance pointed at it as exchanges.md prescribes; ``admin`` and
``install_faults`` speak the ``/_sim`` API over HTTP; ``start_venue_process`` runs
``python -m simulator`` and waits for its ready line.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import selectors
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import attrs
import ccxt

from simulator.faults import FaultPlan
from simulator.model import VenueConfig
from simulator.server import READY_PREFIX, RunningVenue, serve_in_thread

DEMO_KEY = "demo-key"
DEMO_SECRET = "demo-secret"
DEMO_TOKEN = "demo-token"


@contextlib.contextmanager
def running_venue(config: VenueConfig | None = None, seed: int | None = None,
                  faults: FaultPlan | None = None, dialects=None,  # noqa: ANN001
                  clock: Callable[[], int] | None = None) -> Iterator[RunningVenue]:
    """A venue on a free loopback port in a background thread; stopped on exit.
    ``seed`` overrides the config's seed; ``clock`` (epoch ms) replaces the wall clock."""
    if seed is not None:
        config = attrs.evolve(config or VenueConfig(), seed=seed)
    extra = {"clock": clock} if clock is not None else {}
    handle = serve_in_thread(config, faults, dialects=dialects, **extra)
    try:
        yield handle
    finally:
        handle.stop()


def binance_client(url: str, api_key: str = DEMO_KEY, secret: str = DEMO_SECRET,
                   timeout_ms: int = 10000, **options: Any) -> ccxt.binance:
    """Stock ccxt.binance with every ``https://api.binance.com`` URL pointed at the venue."""
    exchange = ccxt.binance({
        "apiKey": api_key, "secret": secret, "enableRateLimit": False, "timeout": timeout_ms,
        "options": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                    "fetchMargins": False, **options},
    })
    api = exchange.urls["api"]
    for name, value in list(api.items()):
        if isinstance(value, str) and value.startswith("https://api.binance.com"):
            api[name] = url + value[len("https://api.binance.com"):]
    return exchange


def admin(url: str, path: str, method: str = "GET", body: Any = None) -> Any:
    """Call the ``/_sim`` admin API; returns the decoded JSON (raises HTTPError on 4xx/5xx)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def install_faults(url: str, rules: list[dict[str, Any]], seed: int = 1) -> Any:
    return admin(url, "/_sim/faults", "POST", {"seed": seed, "rules": rules})


def start_venue_process(*args: str, cwd: str | None = None, timeout: float = 20.0
                        ) -> tuple[subprocess.Popen, dict[str, Any]]:
    """Start ``python -m simulator ARGS`` and wait (with a deadline) for its ready line;
    returns the process (stdout and stderr are pipes) and the ready line's JSON."""
    root = cwd or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    process = subprocess.Popen(
        [sys.executable, "-m", "simulator", *args], cwd=root, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": root})
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                process.kill()
                raise AssertionError(f"no ready line: {process.communicate()[1]}")
            line = process.stdout.readline()
            if not line:
                raise AssertionError(f"venue exited: {process.communicate()[1]}")
            if line.startswith(READY_PREFIX):
                return process, json.loads(line[len(READY_PREFIX):])


def signed_binance(url: str, method: str, path: str, params: dict[str, str],
                   api_key: str = DEMO_KEY, secret: str = DEMO_SECRET) -> Any:
    """A signed Binance request sent exactly as given (ccxt always adds a client order id;
    this does not), with the query string signed by HMAC-SHA256; returns the decoded JSON."""
    query = urllib.parse.urlencode({**params, "timestamp": str(int(time.time() * 1000))})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    request = urllib.request.Request(f"{url}{path}?{query}&signature={signature}",
                                     method=method, headers={"X-MBX-APIKEY": api_key})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def currency_totals(balances: dict[str, dict[str, dict[str, str]]]) -> dict[str, Decimal]:
    """Sum of free + locked per currency over every account of a ``/_sim/balances`` answer
    (zero totals dropped, so a currency first touched later compares equal)."""
    totals: dict[str, Decimal] = {}
    for wallets in balances.values():
        for currency, balance in wallets.items():
            totals[currency] = (totals.get(currency, Decimal(0)) + Decimal(balance["free"])
                                + Decimal(balance["locked"]))
    return {c: v for c, v in totals.items() if v}


def assert_funds_conserved(url: str, start_totals: dict[str, Decimal]) -> None:
    """Judge the venue from its raw ground truth, not its own ``/_sim/audit``: every currency
    summed over all accounts equals ``start_totals``, no balance is negative, and each
    account's locked funds are exactly what its open orders (``/_sim/orders``) reserve."""
    balances = admin(url, "/_sim/balances")
    assert currency_totals(balances) == start_totals
    for account, wallets in balances.items():
        for currency, balance in wallets.items():
            assert Decimal(balance["free"]) >= 0 and Decimal(balance["locked"]) >= 0, (
                account, currency, balance)
    reserved: dict[tuple[str, str], Decimal] = {}
    for order in admin(url, "/_sim/orders"):
        if order["status"] not in ("new", "partially_filled"):
            continue
        base, quote = order["symbol"].split("/")
        if order["side"] == "buy":
            key = (order["account"], quote)
            held = Decimal(order["price"]) * Decimal(order["amount"]) - Decimal(order["cost"])
        else:
            key = (order["account"], base)
            held = Decimal(order["amount"]) - Decimal(order["filled"])
        reserved[key] = reserved.get(key, Decimal(0)) + held
    locked = {(account, currency): Decimal(balance["locked"])
              for account, wallets in balances.items() for currency, balance in wallets.items()
              if Decimal(balance["locked"])}
    assert locked == {key: value for key, value in reserved.items() if value}
