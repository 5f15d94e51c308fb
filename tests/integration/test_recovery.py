"""Restarts from snapshots answer exactly as a full replay of the journals does: orders, their
histories, idempotency by client_id, the ledger; and a snapshot that is missing, tampered,
older than the journal or not the journal's is never trusted over the journal."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pykka
import pytest
from loguru import logger

from actors.trading import LEDGER, TRANSACTIONS
from messages.ledger import ListLedgerEntries
from messages.orders import (
    GetOrderHistory,
    IdempotencyConflict,
    ListOrders,
    OrderState,
)
from simulator.server import RunningVenue
from tests.helpers_trading import (
    TradingNode,
    ask,
    cancel,
    get,
    ground_truth,
    ledger_balances,
    ledger_sums,
    place,
    placed,
)
from tests.helpers_venue import running_venue
from tests.waiting import wait_until
from trading.journal import JournalHead
from trading.snapshot import FILE_NAME, Snapshot, read_snapshot, write_snapshot


@pytest.fixture
def venue() -> Iterator[RunningVenue]:
    with running_venue(seed=11) as handle:
        yield handle


class Node(TradingNode):
    """A trading node that also keeps the restore's log lines about snapshots."""

    def __init__(self, url: str, data_dir: Path) -> None:
        super().__init__(url, data_dir)
        self.lines: list[str] = []

    def start(self, *, accepting: bool = True) -> None:
        self.lines.clear()
        sink = logger.add(lambda message: self.lines.append(str(message)), level="INFO",
                          filter=lambda r: "snapshot" in r["message"])
        try:
            super().start(accepting=accepting)
        finally:
            logger.remove(sink)

    def snapshots(self) -> list[Path]:
        return [self.data_dir / "journal" / FILE_NAME, self.data_dir / "ledger" / FILE_NAME]


@pytest.fixture
def node(venue: RunningVenue, tmp_path: Path) -> Iterator[Node]:
    handle = Node(venue.url, tmp_path)
    handle.start()
    yield handle
    handle.stop()
    pykka.ActorRegistry.stop_all()


def settled(order_id: str) -> Any:
    return wait_until(lambda: (view := get(order_id)).settled and view, timeout=15,
                      what=f"order {order_id} settled")


def answers(closed: list[str]) -> tuple[Any, ...]:
    """What callers see of the closed orders and the books (open orders keep moving)."""
    listed = [v for v in ask(TRANSACTIONS, ListOrders(limit=100)).orders if v.id in closed]
    return (listed, [get(i) for i in closed],
            [ask(TRANSACTIONS, GetOrderHistory(id=i)) for i in closed],
            ledger_balances(), ask(LEDGER, ListLedgerEntries(limit=1000)))


def trade(prefix: str) -> tuple[list[str], str]:
    """A filled order and a canceled one (closed, settled) and one left resting."""
    filled = placed(place(f"{prefix}-fill", side="buy", type="market", price="80000"))
    resting = placed(place(f"{prefix}-rest", side="buy", price="30000"))
    canceled = placed(place(f"{prefix}-cancel", side="buy", price="30000"))
    wait_until(lambda: get(canceled.id).state is OrderState.OPEN, timeout=15,
               what="resting order open")
    cancel(canceled.id)
    settled(filled.id)
    settled(canceled.id)
    return [filled.id, canceled.id], resting.id


def _tamper(path: Path) -> None:
    raw = path.read_bytes()
    header, _, body = raw.partition(b"\n")
    state = json.loads(body)
    if "orders" in state:
        state["orders"] = state["orders"][:-1]  # forget an order
    else:
        state["reservations"] = []
    path.write_bytes(header + b"\n" + json.dumps(state).encode())


def _foreign(path: Path) -> None:
    """A well-formed snapshot bound to another journal's record at the same seq."""
    kind = json.loads(path.read_bytes().partition(b"\n")[0])["kind"]
    snapshot = read_snapshot(path.parent, kind)
    assert snapshot is not None
    write_snapshot(path.parent, Snapshot(kind, JournalHead(snapshot.head.seq, "ab" * 32),
                                         snapshot.state))


SPOILERS: dict[str, Callable[[Path], None] | None] = {
    "kept": None,
    "missing": lambda path: path.unlink(),
    "tampered": _tamper,
    "foreign": _foreign,
}


@pytest.mark.parametrize("spoiler", list(SPOILERS))
def test_a_restart_answers_as_before_whatever_became_of_the_snapshots(
        node: Node, venue: RunningVenue, spoiler: str) -> None:
    closed, resting = trade("a")
    before = answers(closed)
    node.stop()
    assert all(path.exists() for path in node.snapshots())
    spoil = SPOILERS[spoiler]
    if spoil is not None:
        for path in node.snapshots():
            spoil(path)
    node.start()
    replayed = sum("snapshot at 0" in line for line in node.lines)
    assert replayed == (0 if spoiler == "kept" else 2), node.lines  # ledger and coordinator
    assert answers(closed) == before
    assert all(total == 0 for total in ledger_sums().values())
    # Idempotency by client_id for an old, closed order: the existing order, nothing placed.
    again = place("a-fill", side="buy", type="market", price="80000")
    assert again.created is False and again.order.id == closed[0]
    assert isinstance(place("a-fill", side="sell", type="market", price=None),
                      IdempotencyConflict)
    coid = get(closed[0]).client_order_id
    assert [o["client_order_id"] for o in ground_truth(venue.url, "orders")].count(coid) == 1
    # The order left resting resumed and can still be canceled.
    assert get(resting).state is OrderState.OPEN
    cancel(resting)
    assert settled(resting).state is OrderState.CANCELED


def test_a_snapshot_older_than_the_journal_is_caught_up_by_the_records_after_it(
        node: Node, tmp_path: Path) -> None:
    first, resting = trade("a")
    node.stop()
    old = tmp_path / "old"
    old.mkdir()
    for path in node.snapshots():
        shutil.copy(path, old / path.parent.name)
    node.start()
    cancel(resting)
    settled(resting)
    second, _ = trade("b")
    closed = [*first, resting, *second]
    before = answers(closed)
    node.stop()
    for path in node.snapshots():  # as if the last clean stop had not written its snapshots
        shutil.copy(old / path.parent.name, path)
    node.start()
    assert not any("snapshot at 0" in line for line in node.lines), node.lines
    assert len([line for line in node.lines if "snapshot at" in line]) == 2
    assert answers(closed) == before
    again = place("b-fill", side="buy", type="market", price="80000")
    assert again.created is False and again.order.id == second[0]


def test_snapshots_are_also_written_while_running(
        venue: RunningVenue, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """So a start after kill -9 replays only what came after the last periodic one."""
    monkeypatch.setattr("actors.ledger.SNAPSHOT_EVERY", 3)
    monkeypatch.setattr("actors.transactions.SNAPSHOT_EVERY", 3)
    handle = Node(venue.url, tmp_path)
    handle.start()
    try:
        trade("p")
        wait_until(lambda: all(path.exists() for path in handle.snapshots()), timeout=10,
                   what="periodic snapshots")
        heads = [read_snapshot(path.parent, kind).head.seq  # type: ignore[union-attr]
                 for path, kind in zip(handle.snapshots(), ("transactions", "ledger"),
                                       strict=True)]
        assert all(seq > 0 for seq in heads)
    finally:
        handle.stop()
        pykka.ActorRegistry.stop_all()
