"""``python run.py --demo``: a scripted, self-explaining tour of a node's failure handling.

A local venue (the simulator the node embeds) runs in this process for the whole tour, so it
outlives the node's restart, and a node trades on it through its control API. Each step
says what it does and what to expect, then checks every claim against the venue's own ground
truth (``/_sim/orders``, ``/_sim/balances``, ``/_sim/faults`` counters) or the node's answers
where the claim is about the node. The tour ends with a summary table; the exit status is 0
only if every check passed. It takes well under two minutes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from loguru import logger
from rich.console import Console
from rich.table import Table

__all__ = ["DemoCheckFailed", "run_demo"]

_DEMO_KEY = "demo-key"
_DEMO_ENV = {"IRONCLAD_API_KEY": "demo-key", "IRONCLAD_API_SECRET": "demo-secret",
             "IRONCLAD_API_TOKEN": "demo-token"}
_SYMBOL = "BTC/USDT"


class DemoCheckFailed(Exception):
    """Raised when a step cannot go on: what it waited for did not happen in time."""


@attrs.frozen
class _Check:
    claim: str
    passed: bool
    evidence: str


@attrs.define
class _Step:
    title: str
    checks: list[_Check] = attrs.field(factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(c.passed for c in self.checks)


def _http(base: str, method: str, path: str, body: Any = None,
          timeout: float = 15.0) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` until it is truthy; its value, or DemoCheckFailed naming ``what``."""
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise DemoCheckFailed(f"{what}: not within {timeout:g}s")
        pause.wait(0.05)


class _Tour:
    """The node, the venue and the narrator; one method per step."""

    def __init__(self, console: Console, data_dir: Path) -> None:
        from simulator import serve_in_thread

        self.console = console
        self.data_dir = data_dir
        self.notifications = data_dir / "notifications.jsonl"
        self.venue = serve_in_thread(port=0)
        self.config = self._config()
        self.tree: Any = None
        self.base = ""
        self.steps: list[_Step] = []
        self._step: _Step | None = None

    # ------------------------------------------------------------------ plumbing

    def _config(self) -> Any:
        from ironclad.config import (
            AlertRulesConfig,
            AlertsConfig,
            BreakerSettings,
            Config,
            Credentials,
            HealthConfig,
            HttpConfig,
            LoggingConfig,
            NodeConfig,
            PoolConfig,
            TradingConfig,
            VenueConfig,
        )

        venue = VenueConfig(url=self.venue.url)
        return Config(
            node=NodeConfig(name="demo", data_dir=self.data_dir),
            logging=LoggingConfig(level="INFO"),
            venue=venue,
            credentials=Credentials.from_env(venue, _DEMO_ENV),
            http=HttpConfig(port=0),
            # workers check an idle venue with fetch_time; not during the tour (it counts
            # the venue's fetch_time requests)
            pool=PoolConfig(health_interval=600.0),
            breaker=BreakerSettings(window_size=6, minimum_calls=4, failure_rate_threshold=0.5,
                                    half_open_probes=2, open_base=2.0, open_cap=4.0,
                                    jitter=0.0),
            trading=TradingConfig(reconcile_retry=0.5, tolerance_absolute="1",
                                  inflight_initial=0.3, inflight_max=1.0),
            health=HealthConfig(poll_interval=0.3, ask_timeout=2.0),
            alerts=AlertsConfig(
                channels=(f"jsonl://{self.notifications}",), group_wait=0.0,
                group_interval=1.0, evaluation_interval=0.1, throttle=0.0,
                rules=AlertRulesConfig(breaker_open_seconds=1.0, health_for_seconds=60.0)),
        )

    def start_node(self) -> None:
        from actors.control_api import CONTROL_API, ServerAddress
        from ironclad.node import build_node_spec
        from supervisors import ask, start_tree

        self.tree = start_tree(build_node_spec(self.config))
        host, port = ask(CONTROL_API, ServerAddress(), timeout=10)
        self.base = f"http://{host}:{port}"

    def stop_node(self) -> bool:
        tree, self.tree = self.tree, None
        return tree is None or tree.stop(timeout=20)

    def close(self) -> None:
        self.stop_node()
        self.venue.stop()

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return _http(self.base, method, path, body)

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = _http(self.venue.url, method, path, body)
        if status >= 400:
            raise DemoCheckFailed(f"venue admin {method} {path} answered {status}: {answer}")
        return answer

    def say(self, text: str) -> None:
        self.console.print(f"  {text}", style="dim", highlight=False)

    def check(self, claim: str, passed: bool, evidence: str) -> None:
        assert self._step is not None
        self._step.checks.append(_Check(claim, bool(passed), evidence))
        mark = "[green]✓[/]" if passed else "[bold red]✗[/]"
        self.console.print(f"  {mark} {claim}  [dim]({evidence})[/]", highlight=False)

    @contextmanager
    def step(self, title: str, explanation: str) -> Iterator[None]:
        self._step = _Step(title)
        self.steps.append(self._step)
        self.console.rule(f"[bold]{len(self.steps)}. {title}")
        self.say(explanation)
        started = time.monotonic()
        try:
            yield
        except Exception as error:  # noqa: BLE001 - a failed step is reported, the tour goes on
            self._step.error = f"{type(error).__name__}: {error}"
            self.console.print(f"  [bold red]✗ step failed:[/] {self._step.error}",
                               highlight=False)
        finally:
            self._step.seconds = time.monotonic() - started

    # ------------------------------------------------------------------ ground truth

    def venue_orders(self) -> list[dict[str, Any]]:
        return self.sim("GET", f"/_sim/orders?account={_DEMO_KEY}")

    def venue_totals(self) -> dict[str, Decimal]:
        account = self.sim("GET", "/_sim/balances")[_DEMO_KEY]
        return {c: Decimal(b["free"]) + Decimal(b["locked"]) for c, b in account.items()}

    def ledger_totals(self) -> dict[str, Decimal]:
        status, body = self.api("GET", "/balances")
        if status != 200:
            raise DemoCheckFailed(f"GET /balances answered {status}: {body}")
        return {b["currency"]: Decimal(b["total"]) for b in body["balances"]}

    def status(self) -> dict[str, Any]:
        status, body = self.api("GET", "/status")
        if status != 200:
            raise DemoCheckFailed(f"GET /status answered {status}: {body}")
        return body

    def breaker(self, category: str) -> str:
        for venue in self.status()["venues"]:
            for breaker in venue.get("breakers") or ():
                if breaker["category"] == category:
                    return breaker["state"]
        return "unknown"

    def notified(self, rule: str) -> list[str]:
        """The reasons (firing, resolved...) of every notification item for ``rule`` that
        reached the JSON-lines channel, in order."""
        if not self.notifications.exists():
            return []
        reasons = []
        for line in self.notifications.read_text().splitlines():
            for item in json.loads(line)["items"]:
                if item["rule"] == rule:
                    reasons.append(item["reason"])
        return reasons

    def ticker(self) -> Any:
        """One market-data call through the gateway: the venue's clock (never cached, so an
        open breaker answers CircuitOpen rather than a stale copy)."""
        from actors.api import call
        from messages.exchange import Category, ExchangeRequest

        return call(ExchangeRequest.new("sim", "fetch_time", category=Category.MARKET_DATA,
                                        idempotent=True, timeout=3.0))

    def last_price(self) -> Decimal:
        from actors.api import call
        from messages.exchange import Category, ExchangeRequest, ExchangeResult

        reply = call(ExchangeRequest.new("sim", "fetch_ticker", (_SYMBOL,),
                                         category=Category.MARKET_DATA, idempotent=True,
                                         timeout=3.0))
        if not isinstance(reply, ExchangeResult):
            raise DemoCheckFailed(f"fetch_ticker answered {reply}")
        ticker: Any = reply.value  # ccxt's unified ticker, frozen
        return Decimal(str(ticker["last"]))

    def order(self, order_id: str) -> dict[str, Any]:
        status, body = self.api("GET", f"/orders/{order_id}")
        if status != 200:
            raise DemoCheckFailed(f"GET /orders/{order_id} answered {status}: {body}")
        return body

    def order_path(self, order_id: str) -> list[str]:
        """The states the order went through, from its journaled history."""
        from actors.trading import TRANSACTIONS
        from messages.orders import GetOrderHistory
        from supervisors import ask

        history = ask(TRANSACTIONS, GetOrderHistory(id=order_id), timeout=5)
        if not history.events:
            return []
        states = [history.events[0].from_state.value, *(e.to_state.value for e in history.events)]
        return [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]

    def place(self, client_id: str, **fields: str) -> dict[str, Any]:
        body = {"client_id": client_id, "symbol": _SYMBOL, **fields}
        status, answer = self.api("POST", "/orders", body)
        if status not in (200, 202):
            raise DemoCheckFailed(f"POST /orders answered {status}: {answer}")
        return answer

    def wait_order(self, order_id: str, states: tuple[str, ...], timeout: float = 20) -> dict:
        return _wait(lambda: (o := self.order(order_id))["state"] in states and o, timeout,
                     f"order {order_id} reaching {'/'.join(states)}")

    def wait_accepting(self, timeout: float = 30) -> dict[str, Any]:
        return _wait(lambda: (s := self.status()).get("trading", {}).get("accepting") and s,
                     timeout, "the node accepting orders (start-up reconciliation done)")

    def balances_match(self, what: str) -> None:
        venue, ledger = self.venue_totals(), self.ledger_totals()
        differing = {c: (ledger.get(c, Decimal(0)), v) for c, v in venue.items()
                     if ledger.get(c, Decimal(0)) != v}
        self.check(f"{what}: the ledger equals the venue's balances in every currency",
                   not differing,
                   "venue /_sim/balances: " + ", ".join(f"{c} {v.normalize():f}"
                                                      for c, v in sorted(venue.items()))
                   if not differing else f"differ (ledger, venue): {differing}")

    # ------------------------------------------------------------------ the steps

    def run(self) -> None:
        self.normal_trading()
        self.venue_fails()
        self.venue_recovers()
        self.worker_crash()
        self.ambiguous_order()
        self.restart()
        self.balance_drift()

    def normal_trading(self) -> None:
        with self.step("Normal trading",
                       "The node starts (supervision tree, venue gateway, trading, alerts, "
                       "health, control API), reconciles with the venue, then places a "
                       "market sell (fills at once) and a limit buy below the market (rests "
                       "open) through POST /orders."):
            self.start_node()
            self.say(f"control API and status page: {self.base}/   venue: {self.venue.url}")
            self.wait_accepting()
            last = self.last_price()
            market = self.place("demo-market-1", side="sell", type="market", amount="0.01")
            price = (last * Decimal("0.8")).quantize(Decimal("0.01"))
            limit = self.place("demo-limit-1", side="buy", type="limit", amount="0.01",
                               price=str(price))
            self.market = self.wait_order(market["id"], ("filled",))
            self.limit = self.wait_order(limit["id"], ("open",))
            venue = {o["client_order_id"]: o for o in self.venue_orders()}
            self.check("the market order filled at the venue",
                       venue.get(self.market["client_order_id"], {}).get("status") == "filled",
                       f"/_sim/orders: {self.market['client_order_id']} "
                       f"{venue.get(self.market['client_order_id'], {}).get('status')}")
            self.check("the limit order rests open at the venue",
                       venue.get(self.limit["client_order_id"], {}).get("status") == "new",
                       f"/_sim/orders: {self.limit['client_order_id']} at {price} "
                       f"{venue.get(self.limit['client_order_id'], {}).get('status')}")
            _wait(lambda: self.order(self.market["id"])["settled"], 10, "market order settled")
            self.balances_match("after the fill")

    def venue_fails(self) -> None:
        with self.step("The venue starts failing",
                       "The venue answers every market-data request (here: its clock) "
                       "503. The market-data breaker counts the failures and opens: "
                       "further calls are refused at once (CircuitOpen) without reaching "
                       "the venue, and the breaker-open alert is notified once, however many "
                       "calls fail."):
            self.sim("POST", "/_sim/faults", {"seed": 1, "rules": [
                {"endpoint": "fetch_time", "fault": "error_503"}]})
            _wait(lambda: type(self.ticker()).__name__ == "CircuitOpen", 15,
                  "the breaker refusing calls")
            seen = self.sim("GET", "/_sim/faults")["stats"][0]["seen"]
            replies = [type(self.ticker()).__name__ for _ in range(20)]
            seen_after = self.sim("GET", "/_sim/faults")["stats"][0]["seen"]
            self.check("the breaker opened after a few 503s",
                       _wait(lambda: self.breaker("market_data") == "open", 5, "breaker open"),
                       f"the venue answered 503 to {seen} requests; GET /status: open")
            self.check("while open, 20 more calls are refused without reaching the venue",
                       set(replies) == {"CircuitOpen"} and seen_after == seen,
                       f"replies {sorted(set(replies))}; venue saw {seen_after - seen} more")
            reasons = _wait(lambda: self.notified("breaker-open"), 10,
                            "the breaker-open notification")
            threading.Event().wait(1.5)  # give a (wrong) second notification time to show
            reasons = self.notified("breaker-open")
            self.check("the breaker-open alert was notified exactly once",
                       reasons == ["new"],
                       f"notifications.jsonl: {reasons}")

    def venue_recovers(self) -> None:
        with self.step("The venue recovers",
                       "The faults are cleared. After its open period the breaker lets a few "
                       "probe calls through (half-open); they succeed and it closes. The "
                       "alert resolves and a resolved notification follows."):
            self.sim("DELETE", "/_sim/faults")
            _wait(lambda: type(self.ticker()).__name__ == "ExchangeResult", 15,
                  "a ticker call succeeding again")
            for _ in range(3):
                self.ticker()
            self.check("the breaker closed",
                       _wait(lambda: self.breaker("market_data") == "closed", 10,
                             "breaker closed"), "GET /status: closed")
            reasons = _wait(lambda: len(self.notified("breaker-open")) >= 2
                            and self.notified("breaker-open"), 15, "the resolved notification")
            self.check("a resolved notification followed the single firing one",
                       len(reasons) == 2 and reasons[-1] == "resolved",
                       f"notifications.jsonl: {reasons}")

    def worker_crash(self) -> None:
        with self.step("A worker crashes",
                       "worker-2 is sent a message it does not understand — a bug — and "
                       "crashes. Its supervisor (the pool, one_for_one) restarts it alone "
                       "with a fresh ccxt client; the other workers carry on."):
            from supervisors import resolve

            class _NotAMessage:
                pass

            resolve("venue:sim/pool/worker-2", timeout=5).tell(_NotAMessage())

            def worker_2() -> dict[str, Any] | None:
                tree = self.status()["tree"]
                stack = [tree]
                while stack:
                    node = stack.pop()
                    for child in node.get("children", ()):
                        if child["name"] == "venue:sim/pool/worker-2":
                            return child
                        if child.get("supervisor"):
                            stack.append(child["supervisor"])
                return None

            child = _wait(lambda: (c := worker_2()) and c["restarts"] >= 1
                          and c["state"] == "running" and c, 10, "worker-2 restarted")
            self.check("worker-2 was restarted by its supervisor",
                       child["restarts"] == 1, f"GET /status: restarts {child['restarts']}, "
                       f"last failure: {child['last_failure']}")
            pool = _wait(lambda: (p := self.status()["venues"][0]["pool"])["known_workers"] == 4
                         and p, 10, "four workers in the pool")
            replies = [type(self.ticker()).__name__ for _ in range(8)]
            self.check("the pool is whole and calls still succeed",
                       set(replies) == {"ExchangeResult"},
                       f"known workers {pool['known_workers']}; 8 calls: "
                       f"{sorted(set(replies))}")

    def ambiguous_order(self) -> None:
        with self.step("An ambiguous order",
                       "The venue executes the next order but drops the connection before "
                       "answering. The node cannot know whether the order exists, so it "
                       "marks it unknown, never resends blindly, and looks it up at the venue "
                       "by its client order id."):
            self.sim("POST", "/_sim/faults", {"seed": 1, "rules": [
                {"endpoint": "create_order", "fault": "lose_response", "count": 1}]})
            price = (self.last_price() * Decimal("0.8")).quantize(Decimal("0.01"))
            placed = self.place("demo-ambiguous-1", side="buy", type="limit", amount="0.01",
                                price=str(price))
            order = self.wait_order(placed["id"], ("open", "filled"), timeout=30)
            fired = self.sim("GET", "/_sim/faults")["stats"][0]["fired"]
            self.sim("DELETE", "/_sim/faults")
            self.check("the venue really lost the answer", fired == 1,
                       f"/_sim/faults: lose_response fired {fired}×")
            path = self.order_path(order["id"])
            self.check("the node held it as unknown until the venue confirmed it",
                       "unknown" in path and path[-1] == "open", "journal: " + " → ".join(path))
            copies = [o for o in self.venue_orders()
                      if o["client_order_id"] == order["client_order_id"]]
            self.check("the node resolved it to the venue's order", order["state"] == "open",
                       f"GET /orders: {order['state']}, venue id {order['venue_order_id']}")
            self.check("exactly one order exists at the venue (no duplicate)", len(copies) == 1,
                       f"/_sim/orders with {order['client_order_id']}: {len(copies)}")
            self.ambiguous = order

    def restart(self) -> None:
        with self.step("The node restarts",
                       "The node is stopped and started again on the same data directory. "
                       "It resumes its journal, refuses new orders until the start-up "
                       "reconciliation with the venue has run, and then knows exactly the "
                       "venue's open orders and balances."):
            stopped = self.stop_node()
            self.check("the node stopped cleanly", stopped, "every actor stopped in order")
            self.start_node()
            status = self.wait_accepting()
            rec = status["reconciliation"]
            self.check("start-up reconciliation ran and found everything matching",
                       rec["runs"] >= 1 and set(rec["currency_differences"]) == {"match"},
                       f"GET /status: runs {rec['runs']}, currencies "
                       f"{rec['currency_differences']}")
            _code, body = self.api("GET", "/orders?state=open")
            node_open = {o["client_order_id"] for o in body["orders"]}
            venue_open = {o["client_order_id"] for o in self.venue_orders()
                          if o["status"] in ("new", "partially_filled")}
            self.check("the node's open orders are the venue's open orders",
                       node_open == venue_open,
                       f"{len(venue_open)} open at /_sim/orders, {len(node_open)} in the node")
            self.balances_match("after the restart")

    def balance_drift(self) -> None:
        with self.step("A balance drift",
                       "0.25 USDT leaves the account at the venue behind the node's back. "
                       "The next reconciliation sees the difference; within the configured "
                       "tolerance (1 USDT) it posts an adjusting ledger entry with its reason "
                       "instead of freezing trading."):
            self.sim("POST", "/_sim/faults", {"seed": 1, "rules": [
                {"endpoint": "fetch_balance", "fault": "balance_drift", "currency": "USDT",
                 "amount": "0.25", "count": 1}]})
            before = self.venue_totals()["USDT"]
            status, report = self.api("POST", "/reconcile")
            self.sim("DELETE", "/_sim/faults")
            if status != 200:
                raise DemoCheckFailed(f"POST /reconcile answered {status}: {report}")
            usdt = next(c for c in report["currencies"] if c["currency"] == "USDT")
            self.check("the reconciliation adjusted USDT within tolerance",
                       usdt["outcome"] == "adjust" and not usdt["frozen"],
                       f"report: {usdt['outcome']}, delta {usdt['delta']}, {usdt['reason']}")
            after = self.venue_totals()["USDT"]
            self.check("the venue really lost 0.25 USDT", before - after == Decimal("0.25"),
                       f"/_sim/balances USDT {before:f} → {after:f}")
            self.balances_match("after the adjustment")

    # ------------------------------------------------------------------ summary

    def summary(self) -> Table:
        table = Table(title="Ironclad demo: summary", show_lines=False)
        table.add_column("#", justify="right")
        table.add_column("step")
        table.add_column("checks", justify="right")
        table.add_column("result")
        table.add_column("time", justify="right")
        for number, step in enumerate(self.steps, 1):
            passed = sum(c.passed for c in step.checks)
            result = "[green]passed[/]" if step.passed else (
                f"[red]failed: {step.error}[/]" if step.error else "[red]failed[/]")
            table.add_row(str(number), step.title, f"{passed}/{len(step.checks)}", result,
                          f"{step.seconds:.1f}s")
        return table


def run_demo(console: Console | None = None, keep_data: bool = False) -> int:
    """Run the tour; 0 if every check passed, 1 otherwise. Node logs go to ``node.log`` in a
    temporary data directory (kept, and named, when a check failed or ``keep_data``)."""
    from ironclad.logs import configure_logging

    console = console or Console()
    data_dir = Path(tempfile.mkdtemp(prefix="ironclad-demo-"))
    log_file = open(data_dir / "node.log", "a", encoding="utf-8")  # noqa: SIM115 - closed below
    configure_logging(level="INFO", stream=log_file)
    started = time.monotonic()
    console.rule("[bold]Ironclad demo")
    console.print("A node against the local venue, through faults, crashes and a restart. "
                  "Every ✓ is checked against the venue's ground truth.", highlight=False)
    tour = _Tour(console, data_dir)
    try:
        tour.run()
    finally:
        tour.close()
        logger.remove()  # the file sink goes with its file
        log_file.close()
    console.print()
    console.print(tour.summary())
    ok = bool(tour.steps) and all(step.passed for step in tour.steps)
    console.print(f"{'[green]all checks passed' if ok else '[red]some checks failed'}[/] "
                  f"in {time.monotonic() - started:.0f}s", highlight=False)
    if ok and not keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    else:
        console.print(f"data and node log kept in {data_dir}", highlight=False)
    return 0 if ok else 1
