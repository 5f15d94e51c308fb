"""Orders end to end: through the control API, through an embedded actor ref, and the venue's
own ceiling; start-up recovery with 10 000 journaled transactions (after a clean stop, a full
replay, and after SIGKILL of a node process); reconciliation of 1 000 open orders and 200
currencies (right after placing, in a steady state, at start-up). The venue runs in its own
process (``python -m simulator``).

    PYTHONPATH=. python bench/orders.py [--orders 400] [--clients 16] [--journaled 10000]
                                        [--open 1000] [--currencies 200] [--steady-after 30]
                                        [--skip venue api ref recovery crash reconcile]

Orders/s counts orders *completed*: accepted by the node (journaled, funds reserved) and then
submitted, filled at the venue and settled — the whole three-phase protocol, not just the
202. "accepted/s" is the rate of answers alone. Market orders of 0.001 BTC alternate buy and
sell so balances stay level; every order is checked to end ``filled``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import attrs
from loguru import logger

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actors.ledger import SNAPSHOT_EVERY as LEDGER_SNAPSHOT_EVERY  # noqa: E402
from actors.reconciler import reconcile_now  # noqa: E402
from actors.transactions import SNAPSHOT_EVERY as TX_SNAPSHOT_EVERY  # noqa: E402
from ironclad.config import (  # noqa: E402
    Config,
    Credentials,
    HttpConfig,
    LoggingConfig,
    NodeConfig,
    TradingConfig,
    VenueConfig,
)
from ironclad.http.orders import TRANSACTIONS  # noqa: E402
from ironclad.logs import configure_logging  # noqa: E402
from ironclad.node import build_node_spec  # noqa: E402
from messages.orders import (  # noqa: E402
    ListOrders,
    NotAcceptingOrders,
    OrderList,
    OrderPlaced,
    OrderState,
    PlaceOrder,
    ReconciliationView,
)
from supervisors import ask, resolve, start_tree  # noqa: E402
from tests.helpers_control_api import (  # noqa: E402
    DEMO_ENV,
    NodeProcess,
    Process,
    VenueProcess,
    call,
    free_port,
    sim,
)
from tests.waiting import wait_until  # noqa: E402

CLOSED = {OrderState.FILLED, OrderState.CANCELED, OrderState.REJECTED, OrderState.ABORTED}
TRADING = TradingConfig(reconcile_retry=0.5, reconcile_interval=3600.0)


def _venue_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_venue", ROOT / "bench" / "venue.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def node_config(data_dir: Path, venue_url: str) -> Config:
    config = Config(node=NodeConfig(data_dir=data_dir), venue=VenueConfig(url=venue_url),
                    http=HttpConfig(port=0), trading=TRADING,
                    logging=LoggingConfig(level="WARNING"))
    return attrs.evolve(config, credentials=Credentials.from_env(config.venue, DEMO_ENV))


def market_order(tag: str, n: int) -> dict[str, Any]:
    return {"client_id": f"{tag}-{n}", "symbol": "BTC/USDT",
            "side": "buy" if n % 2 else "sell", "type": "market", "amount": "0.001",
            **({"price": "200000"} if n % 2 else {})}


# ----------------------------------------------------------------------- venue ceiling


def venue_ceiling(clients: int, seconds: float) -> float:
    venue = VenueProcess(free_port())
    try:
        return float(asyncio.run(_venue_bench().phase(venue.url, "order", clients, seconds)))
    finally:
        venue.terminate()


# ----------------------------------------------------------------------- through the API


async def _post_all(base: str, bodies: list[dict[str, Any]], clients: int) -> list[str]:
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    ids: list[str] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            while True:
                async with session.post(base + "/orders", json=body) as response:
                    answer = await response.json()
                    if response.status in (200, 202):
                        ids.append(answer["id"])
                        break
                    if response.status != 503:
                        raise RuntimeError(f"{response.status}: {answer}")

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(clients)))
    return ids


#: Reconciliation runs that failed before the measured one (with why).
FAILED_RUNS: list[str] = []
#: The same before the steady-state run.
STEADY_FAILED_RUNS: list[str] = []

#: State counts of the last poll (reported: rejections are the gateway's backpressure).
LAST_STATES: dict[str, int] = {}


def _all_closed(list_orders: Callable[[], list[dict[str, Any]]], expected: int) -> bool:
    """True once ``expected`` orders are closed and settled; LAST_STATES keeps the counts."""
    orders = list_orders()
    LAST_STATES.clear()
    LAST_STATES.update(Counter(o["state"] + ("" if o["settled"] else " (unsettled)")
                               for o in orders))
    closed = [o for o in orders if o["state"] in {s.value for s in CLOSED} and o["settled"]]
    return len(closed) >= expected


def _settle(list_orders: Callable[[], list[dict[str, Any]]], expected: int) -> None:
    try:
        wait_until(lambda: _all_closed(list_orders, expected), 300, "all orders settled")
    except AssertionError:
        raise AssertionError(f"not all {expected} orders settled in 300 s: {LAST_STATES}"
                             ) from None


def through_api(orders: int, clients: int) -> tuple[float, float]:
    venue = VenueProcess(free_port())
    with tempfile.TemporaryDirectory() as data_dir:
        node = NodeProcess(venue.url, Path(data_dir), free_port(), ("--log-level", "WARNING"))
        try:
            node.wait_ready(30)
            wait_until(lambda: call(node.base, "GET", "/orders")[0] == 200, 20)
            asyncio.run(_post_all(node.base, [market_order("warm", 0)], 1))
            bodies = [market_order("api", n) for n in range(orders)]
            started = time.monotonic()
            asyncio.run(_post_all(node.base, bodies, clients))
            accepted = time.monotonic() - started

            def listed() -> list[dict[str, Any]]:
                return call(node.base, "GET", "/orders?limit=10000")[1]["orders"]

            _settle(listed, orders + 1)
            completed = time.monotonic() - started
        finally:
            node.terminate()
            venue.terminate()
    return orders / accepted, orders / completed


# ----------------------------------------------------------------------- embedded actor ref


def _place(ref: Any, body: dict[str, Any]) -> str:
    command = PlaceOrder(client_id=body["client_id"], symbol=body["symbol"], side=body["side"],
                         type=body["type"], amount=Decimal(body["amount"]),
                         price=Decimal(body["price"]) if "price" in body else None)
    while True:
        reply = ref.ask(command, timeout=30)
        if isinstance(reply, OrderPlaced):
            return reply.order.id
        if not isinstance(reply, NotAcceptingOrders):
            raise RuntimeError(f"refused: {reply}")
        threading.Event().wait(0.05)


def _views() -> list[dict[str, Any]]:
    reply = ask(TRANSACTIONS, ListOrders(limit=10_000), timeout=30)
    assert isinstance(reply, OrderList)
    return [{"state": o.state.value, "settled": o.settled} for o in reply.orders]


def place_many(bodies: list[dict[str, Any]], clients: int) -> float:
    """Place through the coordinator's ref from ``clients`` threads; seconds taken."""
    ref = resolve(TRANSACTIONS, timeout=10)
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(lambda body: _place(ref, body), bodies))
    return time.monotonic() - started


def through_ref(venue_url: str, data_dir: Path, orders: int, clients: int
                ) -> tuple[float, float]:
    tree = start_tree(build_node_spec(node_config(data_dir, venue_url)))
    try:
        _place(resolve(TRANSACTIONS, timeout=10), market_order("warm", 0))
        bodies = [market_order("ref", n) for n in range(orders)]
        started = time.monotonic()
        accepted = place_many(bodies, clients)
        _settle(_views, orders + 1)
        completed = time.monotonic() - started
    finally:
        tree.stop(timeout=30)
    return orders / accepted, orders / completed


# ----------------------------------------------------------------------- recovery


@attrs.frozen
class RecoveryFigures:
    """One restart timed: until the coordinator answers (journals verified, state restored)
    and until new orders are accepted (start-up reconciliation done); the ledger's and the
    coordinator's own log lines on their restore."""

    answering: float
    accepting: float
    lines: tuple[str, ...]


def recovery(venue_url: str, data_dir: Path, journaled: int, clients: int
             ) -> tuple[int, RecoveryFigures, RecoveryFigures, float]:
    """Journal ``journaled`` transactions (placed for real), stop, and time the restart:
    from the snapshots the clean stop wrote, then again with them removed (a full replay of
    both journals, as after a kill -9 before the first periodic snapshot). Also the journal's
    open+verify alone."""
    tree = start_tree(build_node_spec(node_config(data_dir, venue_url)))
    try:
        existing = len(_views())
        bodies = [market_order("jr", existing + n) for n in range(journaled - existing)]
        if bodies:
            place_many(bodies, clients)
        _settle(_views, journaled)
    finally:
        tree.stop(timeout=60)
    from_snapshots = _restart(venue_url, data_dir, "after-snapshot")
    for store in ("journal", "ledger"):
        (data_dir / store / "snapshot.json").unlink()
    full_replay = _restart(venue_url, data_dir, "after-replay")
    return journaled, from_snapshots, full_replay, _verify_seconds(data_dir)


def _restart(venue_url: str, data_dir: Path, tag: str) -> RecoveryFigures:
    # The garbage of the tree that placed the orders is not the restarted node's: collected
    # first, as a fresh process would not have it (its collection would land in the timing).
    gc.collect()
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message).strip()), level="INFO",
                      filter=lambda record: "resumed in" in record["message"]
                      or "entries restored" in record["message"])
    started = time.monotonic()
    tree = start_tree(build_node_spec(node_config(data_dir, venue_url)))
    try:
        reply = ask(TRANSACTIONS, ListOrders(limit=1), timeout=60)
        assert isinstance(reply, OrderList)
        answering = time.monotonic() - started
        _place(resolve(TRANSACTIONS, timeout=10), market_order(tag, 0))
        accepting = time.monotonic() - started
    finally:
        tree.stop(timeout=60)
        logger.remove(sink)
    return RecoveryFigures(answering, accepting, tuple(lines))


@attrs.frozen
class CrashFigures:
    """A restart after SIGKILL: the restart timed as the others, the snapshots' heads and
    the journals' lengths at the kill, how long placing and settling took and how many
    transactions the journal held."""

    restart: RecoveryFigures
    snapshot_seqs: dict[str, int]
    heads: dict[str, int]
    placing: float
    transactions: int
    wal_bytes: dict[str, int]


#: The snapshot seq each restore log line names (0: a full replay).
_FROM_SNAPSHOT = {"journal": re.compile(r"records, snapshot at (\d+)\)"),
                  "ledger": re.compile(r"entries restored from .* \(snapshot at (\d+),")}


def crash_recovery(journaled: int, clients: int) -> tuple[CrashFigures, CrashFigures]:
    """Journal ``journaled`` transactions in a node *process* (``python run.py``, default
    config, so its periodic snapshots are the production ones), placed through its control
    API; once all are settled and both periodic snapshots exist, SIGKILL it (no clean stop:
    no final snapshot) and time the restart on the same data dir in-process, as the others.
    What a restart replays is what the journals hold past their last periodic snapshot, so
    where the kill falls matters: then the same on a fresh data dir, placing ``journaled``
    less 100, then only as many more as keep the transaction journal just short of its next
    periodic snapshot (the most a kill leaves to replay at about ``journaled``)."""
    venue = VenueProcess(free_port())
    stores = ("journal", "ledger")
    try:
        with tempfile.TemporaryDirectory() as directory:
            data_dir = Path(directory) / "node"
            bodies = [market_order("kill", n) for n in range(journaled)]
            seqs, placing, placed = _killed_node(venue.url, data_dir, clients, bodies)
            wal = _wal_bytes(data_dir, stores)
            heads = _heads(data_dir, stores, Path(directory) / "copy")
            at_kill = CrashFigures(_restart(venue.url, data_dir, "after-kill"), seqs, heads,
                                   placing, placed, wal)
            per_order = heads["journal"] // journaled
            other = heads["journal"] - per_order * journaled  # seeding, reconcile reports

            late_dir = Path(directory) / "late"
            first = max(0, journaled - 100)

            def short_of_snapshot() -> list[dict[str, Any]]:
                seq = _snapshot_seq(late_dir / "journal")
                head = per_order * first + other  # as the first node's, placed as fast
                room = _next_snapshot(seq, TX_SNAPSHOT_EVERY) - head - 30  # 30: a margin
                return [market_order("late", first + n) for n in range(room // per_order)]

            bodies = [market_order("late", n) for n in range(first)]
            seqs, placing, placed = _killed_node(venue.url, late_dir, clients, bodies,
                                                 short_of_snapshot)
            wal = _wal_bytes(late_dir, stores)
            heads = _heads(late_dir, stores, Path(directory) / "copy-late")
            worst = CrashFigures(_restart(venue.url, late_dir, "after-late-kill"), seqs,
                                 heads, placing, placed, wal)
    finally:
        venue.terminate()
    for figures in (at_kill, worst):
        for store, pattern in _FROM_SNAPSHOT.items():
            used = [int(found.group(1)) for line in figures.restart.lines
                    if (found := pattern.search(line))]
            assert used == [figures.snapshot_seqs[store]], (store, used, figures)
    return at_kill, worst


def _next_snapshot(seq: int, every: int) -> int:
    """The journal length at which the next periodic snapshot after one at ``seq`` is due
    (``every`` records and a quarter of the journal, as the actors decide)."""
    head = seq + every
    while head - seq < head // 4:
        head += 1
    return head


def _killed_node(venue_url: str, data_dir: Path, clients: int, bodies: list[dict[str, Any]],
                 then: Callable[[], list[dict[str, Any]]] | None = None
                 ) -> tuple[dict[str, int], float, int]:
    """A node process on a fresh ``data_dir`` places ``bodies`` through its control API and,
    once they are filled and settled (its /status), those ``then`` returns; once all are
    settled and both journals have a snapshot, it is SIGKILLed. The snapshots' seqs, the
    seconds placing took and the orders placed."""
    node = NodeProcess(venue_url, data_dir, free_port(),
                       ("--log-level", "WARNING", "--no-console"))
    placed = 0

    def settled() -> bool:
        trading = call(node.base, "GET", "/status", timeout=30)[1]["trading"]
        LAST_STATES.clear()
        LAST_STATES.update(trading["by_state"])
        return (trading["by_state"].get("filled", 0) >= placed
                and trading["open_transactions"] == 0)

    def snapshots() -> bool:
        return all((data_dir / s / "snapshot.json").exists() for s in ("journal", "ledger"))

    try:
        node.wait_ready(60)
        started = time.monotonic()
        for step in (bodies, then):
            if step is None:
                continue
            if callable(step):
                wait_until(snapshots, 60, "snapshots written", 0.5)
                step = step()
            asyncio.run(_post_all(node.base, step, clients))
            placed += len(step)
            wait_until(settled, 300, f"{placed} orders settled", 0.5)
        placing = time.monotonic() - started
        wait_until(snapshots, 60, "snapshots written", 0.5)
        seqs = {store: _snapshot_seq(data_dir / store) for store in ("journal", "ledger")}
        assert node.proc.poll() is None, "the node died before its kill"
    finally:
        node.kill()
    assert node.proc.returncode == -signal.SIGKILL, node.proc.returncode
    return seqs, placing, placed


def _snapshot_seq(directory: Path) -> int:
    """The journal seq a snapshot file was taken at (its header line)."""
    with (directory / "snapshot.json").open("rb") as file:
        return int(json.loads(file.readline())["seq"])


def _wal_bytes(data_dir: Path, stores: tuple[str, ...]) -> dict[str, int]:
    """The size of each journal's SQLite write-ahead log as the kill left it (a clean close
    checkpoints it into the database; a kill leaves it for the next open to read)."""
    return {store: sum(f.stat().st_size for f in (data_dir / store).glob("*-wal"))
            for store in stores}


def _heads(data_dir: Path, stores: tuple[str, ...], scratch: Path) -> dict[str, int]:
    """Each journal's length as the kill left it, read from a copy (opening the original
    would do the restart's first work, e.g. SQLite's recovery, before it is timed)."""
    from trading.journal import Journal

    heads = {}
    for store in stores:
        shutil.copytree(data_dir / store, scratch / store)
        with Journal.open(scratch / store) as journal:
            heads[store] = len(journal)
    return heads


def _verify_seconds(data_dir: Path) -> float:
    """Opening (and hash-verifying) the journal alone, as the coordinator does first."""
    from trading.journal import Journal

    started = time.monotonic()
    Journal.open(data_dir / "journal").close()
    return time.monotonic() - started


# ----------------------------------------------------------------------- reconciliation


def _venue_config(currencies: int, markets: int, path: Path) -> None:
    """A venue whose demo account holds ``currencies`` currencies, trading ``markets`` of them
    against USDT."""
    names = [f"C{i:03d}" for i in range(currencies - 1)]
    lines = ["seed = 3", "keep_demo_account = false", ""]
    for name in names[:markets]:
        lines += ["[[markets]]", f'symbol = "{name}/USDT"', 'tick_size = "0.01"',
                  'step_size = "0.001"', 'min_qty = "0.001"', 'min_notional = "0.1"',
                  'initial_price = "100"', 'house_level_qty = "5"', ""]
    balances = ", ".join(f'{name} = "1000"' for name in names)
    lines += ["[[accounts]]", 'id = "demo-key"', 'api_key = "demo-key"',
              'secret = "demo-secret"', 'nobitex_token = "demo-token"',
              f'balances = {{ USDT = "100000000", {balances} }}', ""]
    path.write_text("\n".join(lines))


@attrs.frozen
class ReconcileFigures:
    """One reconciliation measured: its seconds, the symbols whose trades it read, the
    rate-limit weight of its reads and the seconds the venue takes for the same reads."""

    seconds: float
    trade_symbols: tuple[str, ...]
    weight: float
    venue_seconds: float


def _weights() -> tuple[float, Any]:
    """The account budget the node spends (usable units/s) and its cost table, as the rate
    limiter builds them for ccxt.binance from the bench node's config."""
    import ccxt

    from gateway.ratelimit import BINANCE_SPOT_ENDPOINTS, cost_table, limiter_config_from_ccxt

    client = ccxt.binance()
    costs = cost_table(client.api, BINANCE_SPOT_ENDPOINTS)
    limits = node_config(Path("."), "http://127.0.0.1:1").ratelimit
    if limits.units_per_second > 0:
        return limits.units_per_second * limits.safety_margin, costs
    config = limiter_config_from_ccxt(client, costs, safety_margin=limits.safety_margin,
                                      burst_seconds=limits.burst_seconds)
    return config.usable_rate, costs


def _last_run() -> Any:
    from actors.reconciler import GetReconcilerStatistics
    from actors.trading import RECONCILER

    return ask(RECONCILER, GetReconcilerStatistics(), timeout=10)


def _measured(seconds: float, url: str) -> ReconcileFigures:
    """The figures of the reconciler's last run (its trades symbols from its statistics)."""
    symbols = tuple(_last_run().last_trade_symbols)
    _, costs = _weights()
    weight = (costs.cost_of("fetch_balance") + costs.cost_of("fetch_open_orders")
              + len(symbols) * costs.cost_of("fetch_my_trades"))
    return ReconcileFigures(seconds, symbols, weight,
                            _venue_reads(url, symbols, TRADING.trades_lookback))


@attrs.frozen
class SteadyWait:
    """How the steady-state run was waited for: seconds from placing finished to its start,
    the most in-flight orders overdue for a lookup seen meanwhile (sampled every 0.5 s) and
    since when (seconds after placing) none were, and at its start the coordinator's calls
    at the venue and the account bucket's tokens."""

    seconds: float
    max_overdue: int
    quiet_from: float
    pending_calls: int
    tokens: float
    capacity: float


def reconciliation(open_orders: int, currencies: int, markets: int, clients: int,
                   steady_after: float
                   ) -> tuple[ReconcileFigures, ReconcileFigures, SteadyWait, ReconcileFigures]:
    """Periodic Reconciles with ``open_orders`` resting orders and ``currencies`` currencies:
    one right after placing them (the 1 000 creates have spent the account's rate-limit
    budget: the bench's setup, not a running node's state), one as a running node sees it
    (``steady_after`` seconds after placing finished and once the in-flight schedule has no
    order overdue for a lookup); then the start-up reconciliation of the node restarted on
    the same data dir (its budget full, as at every start). Resting orders are refreshed by
    one all-markets open-orders listing every ``inflight_max`` (30 s), not a lookup each."""
    with tempfile.TemporaryDirectory() as directory:
        config_path = Path(directory) / "venue.toml"
        _venue_config(currencies, markets, config_path)
        port = free_port()
        venue = Process(["-m", "simulator", "--port", str(port), "--config", str(config_path),
                         "--log-level", "WARNING"])
        url = f"http://127.0.0.1:{port}"
        data_dir = Path(directory) / "node"
        try:
            wait_until(lambda: _health(url), 20, "venue ready")
            tree = start_tree(build_node_spec(node_config(data_dir, url)))
        except BaseException:
            venue.terminate()
            raise
        try:
            symbols = [f"C{i:03d}/USDT" for i in range(markets)]
            placed = 0
            while (resting := sum(o["state"] == "open" for o in _views())) < open_orders:
                # In batches the pool's trading queue can hold (a burst beyond it is refused
                # as Overloaded), each batch submitted before the next.
                batch = [{"client_id": f"open-{placed + n}",
                          "symbol": symbols[(placed + n) % len(symbols)], "side": "buy",
                          "type": "limit", "amount": "0.01", "price": "50"}
                         for n in range(min(48, open_orders - resting))]
                place_many(batch, clients)
                placed += len(batch)
                wait_until(lambda: not [o for o in _views() if o["state"] in
                                        ("prepared", "submitting", "unknown")], 120,
                           "batch submitted")
            placed_at = time.monotonic()
            assert len([o for o in sim(url, "/_sim/orders?account=demo-key")
                        if o["status"] == "new"]) == open_orders
            report, total, FAILED_RUNS[:] = _periodic_run()
            _check(report, open_orders, currencies)
            periodic = _measured(total, url)
            wait = _wait_steady(placed_at, steady_after)
            report, total, STEADY_FAILED_RUNS[:] = _periodic_run()
            _check(report, open_orders, currencies)
            steady = _measured(total, url)
        finally:
            tree.stop(timeout=60)
        try:
            tree = start_tree(build_node_spec(node_config(data_dir, url)))
            try:
                last = wait_until(lambda: _last_run().last, 60, "start-up reconciled")
                _check(last, open_orders, currencies)
                startup = _measured((last.finished_at - last.started_at).total_seconds(), url)
            finally:
                tree.stop(timeout=60)
        finally:
            venue.terminate()
    return periodic, steady, wait, startup


def _periodic_run() -> tuple[Any, float, list[str]]:
    """One Reconcile, timed. A run may fail on a queued request's deadline: retried up to
    four times; the failures are returned (and reported) with the last report."""
    failed: list[str] = []
    while True:
        started = time.monotonic()
        report = reconcile_now(timeout=300)
        total = time.monotonic() - started
        if isinstance(report, ReconciliationView) or len(failed) == 4:
            return report, total, failed
        failed.append(f"{total:.1f}s {str(report)[:160]}")


def _wait_steady(placed_at: float, after: float) -> SteadyWait:
    """Until ``after`` seconds have passed since placing finished *and* the coordinator's
    statistics show no in-flight order overdue for a lookup (polled every 0.5 s)."""
    from actors.names import GatewayNames
    from actors.protocol import GetStatistics as GetGatewayStatistics
    from actors.transactions import CoordinatorStatistics, GetStatistics

    overdue = [0]
    quiet_from = [0.0]

    def statistics() -> CoordinatorStatistics:
        reply = ask(TRANSACTIONS, GetStatistics(), timeout=10)
        assert isinstance(reply, CoordinatorStatistics), reply
        return reply

    def steady() -> bool:
        overdue.append(statistics().inflight.overdue)
        if overdue[-1]:
            quiet_from[0] = time.monotonic() - placed_at
        return time.monotonic() - placed_at >= after and overdue[-1] == 0

    wait_until(steady, after + 120, "no in-flight order overdue", 0.5)
    seconds = time.monotonic() - placed_at
    pending = statistics().pending_calls
    limiter = GatewayNames(node_config(Path("."), "http://127.0.0.1:1").venue.name).rate_limiter
    bucket = ask(limiter, GetGatewayStatistics(), timeout=10).bucket
    return SteadyWait(seconds, max(overdue), quiet_from[0], pending, bucket.tokens,
                      bucket.usable_capacity)


def _check(report: Any, open_orders: int, currencies: int) -> None:
    assert isinstance(report, ReconciliationView), (report, FAILED_RUNS,
                                                      STEADY_FAILED_RUNS)
    assert len(report.currencies) == currencies, len(report.currencies)
    assert report.open_orders_seen == open_orders, report.open_orders_seen
    assert {c.outcome for c in report.currencies} == {"match"}, report.currencies


def _health(url: str) -> bool:
    try:
        sim(url, "/_sim/health")
        return True
    except OSError:
        return False


def _venue_reads(url: str, trade_symbols: tuple[str, ...], lookback: float) -> float:
    """The reads the reconciler makes, one after another with a plain ccxt client (no rate
    limit): balances, every open order in one query, recent trades of ``trade_symbols``."""
    from tests.helpers_venue import binance_client

    client = binance_client(url, warnOnFetchOpenOrdersWithoutSymbol=False)
    client.load_markets()
    since = int((time.time() - lookback) * 1000)
    started = time.monotonic()
    client.fetch_balance()
    client.fetch_open_orders()
    for symbol in trade_symbols:
        client.fetch_my_trades(symbol, since)
    return time.monotonic() - started


# ----------------------------------------------------------------------- main


def _states() -> str:
    return " ".join(f"{state}:{n}" for state, n in sorted(LAST_STATES.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--journaled", type=int, default=10_000)
    parser.add_argument("--open", type=int, default=1000)
    parser.add_argument("--currencies", type=int, default=200)
    parser.add_argument("--markets", type=int, default=8,
                        help="markets the open orders rest on")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--steady-after", type=float, default=30.0,
                        help="seconds after placing before the steady-state reconciliation")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["venue", "api", "ref", "recovery", "crash", "reconcile"])
    args = parser.parse_args()
    configure_logging(level="WARNING")
    rows: list[tuple[str, str, str]] = []

    def report(name: str, value: str, goal: str = "") -> None:
        rows.append((name, value, goal))
        print(f"  {name}: {value}", flush=True)

    if "venue" not in args.skip:
        report("venue ceiling: signed create_order/s (32 clients)",
               f"{venue_ceiling(32, args.seconds):.0f}")
    if "api" not in args.skip:
        accepted, completed = through_api(args.orders, args.clients)
        report(f"control API: orders accepted/s ({args.clients} clients)", f"{accepted:.0f}")
        report("control API: orders completed (closed+settled)/s", f"{completed:.0f}")
        report("  ... final states", _states())
    with tempfile.TemporaryDirectory() as directory:
        venue = VenueProcess(free_port())
        try:
            if "ref" not in args.skip:
                accepted, completed = through_ref(venue.url, Path(directory) / "ref",
                                                  args.orders, args.clients)
                report(f"actor ref: orders accepted/s ({args.clients} threads)",
                       f"{accepted:.0f}")
                report("actor ref: orders completed (closed+settled)/s", f"{completed:.0f}")
                report("  ... final states", _states())
            if "recovery" not in args.skip:
                n, snapshots, replayed, verify = recovery(
                    venue.url, Path(directory) / "recovery", args.journaled, args.clients)
                for label, figures in (("after a clean stop (snapshots)", snapshots),
                                       ("full replay (no snapshots)", replayed)):
                    report(f"restart with {n} journaled transactions, {label}: "
                           "coordinator answering (s)", f"{figures.answering:.2f}", "<= 2")
                    report("  ... new orders accepted (start-up reconciliation done) (s)",
                           f"{figures.accepting:.2f}", "<= 2")
                    for line in figures.lines:
                        print(f"    {line}")
                report("  ... transaction journal open + verify alone (s)", f"{verify:.2f}")
        finally:
            venue.terminate()
    if "crash" not in args.skip:
        for label, crash in zip(("after SIGKILL, periodic snapshots",
                                 "after SIGKILL just short of the next snapshot"),
                                crash_recovery(args.journaled, args.clients), strict=True):
            report(f"restart with {crash.transactions} journaled transactions, {label}: "
                   "coordinator answering (s)", f"{crash.restart.answering:.2f}", "<= 2")
            report("  ... new orders accepted (start-up reconciliation done) (s)",
                   f"{crash.restart.accepting:.2f}", "<= 2")
            for store, what in (("journal", "transaction journal"), ("ledger", "ledger")):
                head, seq = crash.heads[store], crash.snapshot_seqs[store]
                report(f"  ... {what} records replayed past its snapshot (of {head})",
                       str(head - seq))
            for line in crash.restart.lines:
                print(f"    {line}")
            print("    SQLite write-ahead logs left by the kill: " + ", ".join(
                f"{store} {size / 1e6:.1f} MB" for store, size in crash.wal_bytes.items()))
            print(f"    the node process (run.py, default config) placed and settled its "
                  f"orders through its control API in {crash.placing:.0f} s and was killed "
                  "(exit -9) with both snapshots on disk")
        print(f"    periodic snapshots come every max({TX_SNAPSHOT_EVERY}, a quarter) "
              f"transaction journal records and max({LEDGER_SNAPSHOT_EVERY}, a quarter) ledger "
              "records; the second kill: a node on a fresh data dir placed its orders in two "
              "steps, the second as many as kept its transaction journal just short of its next "
              "snapshot")
    if "reconcile" not in args.skip:
        periodic, steady, wait, startup = reconciliation(
            args.open, args.currencies, args.markets, args.clients, args.steady_after)
        rate, _ = _weights()
        what = f"reconcile {args.open} open orders, {args.currencies} currencies"
        for label, run, failures in (
                ("periodic right after placing, budget spent", periodic, FAILED_RUNS),
                (f"periodic, steady state: {wait.seconds:.0f} s after placing", steady,
                 STEADY_FAILED_RUNS),
                ("start-up, budget full", startup, None)):
            report(f"{what} ({label}) (s)", f"{run.seconds:.2f}",
                   f"<= 1 + {run.venue_seconds:.2f}")
            report("  ... venue time for the same reads, sequential plain ccxt (s)",
                   f"{run.venue_seconds:.2f}")
            report(f"  ... weight of its reads (units; the budget is {rate:g}/s)",
                   f"{run.weight:g}")
            report("  ... markets whose recent trades it read",
                   f"{len(run.trade_symbols)} of {args.markets}")
            if failures is not None:
                report("  ... failed runs before it", str(len(failures)))
                for failure in failures:
                    print(f"    failed run: {failure}")
        print(f"    right after placing: the {args.open} creates have spent the account's "
              f"budget, so the run's reads wait for their weight (>= "
              f"{periodic.weight / rate:.2f} s), also behind the open-orders listing the "
              "in-flight schedule queued meanwhile")
        overdue = (f"up to {wait.max_overdue} were during the wait, none from "
                   f"{wait.quiet_from:.1f} s on" if wait.max_overdue
                   else "none was during the wait, sampled from the end of the first run")
        print(f"    steady state: waited {wait.seconds:.1f} s from placing finished (at least "
              f"{args.steady_after:g} s, then until no in-flight order was overdue for a "
              f"lookup: {overdue}); at its start "
              f"{wait.pending_calls} coordinator call(s) at the venue, the account bucket "
              f"{wait.tokens:.1f} of {wait.capacity:g} units")
        print("    start-up: the node restarted on the same data dir; its budget is full at "
              "start and the in-flight schedule's first listing comes one interval later")
    print()
    print(f"orders benchmark ({os.cpu_count()} cores, venue in its own process)")
    width = max(len(name) for name, _, _ in rows) + 2
    print(f"{'measure':<{width}}{'value':>10}{'goal':>16}")
    for name, value, goal in rows:
        print(f"{name:<{width}}{value:>10}{goal:>16}")


if __name__ == "__main__":
    main()
