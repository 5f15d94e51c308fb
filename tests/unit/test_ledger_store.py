"""The durable ledger: entries journaled before they apply, rebuilt on open, replay-safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import diskcache
import pytest

from trading.errors import IdempotencyConflict, JournalError, JournalIntegrityError
from trading.journal import Journal, canonical_json
from trading.ledger import Fill
from trading.snapshot import FILE_NAME, Snapshot, read_snapshot, write_snapshot
from trading.store import LedgerStore

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def trade_some(store: LedgerStore) -> None:
    ledger = store.ledger
    ledger.deposit("usdt", "binance", "USDT", D("10000"), T0)
    ledger.reserve("t1", "binance", "USDT", D("3000"), T0, order_id="o1")
    ledger.fill(Fill("tr1", "binance", "BTC/USDT", "buy", D("0.05"), D("30000"), fee=D("1.5"),
                     fee_currency="USDT", transfer_id="t1", order_id="o1"), T0)
    ledger.freeze("f1", "binance", "ETH", T0, reason="drift")


def state(store: LedgerStore) -> tuple:
    ledger = store.ledger
    return (ledger.entries, ledger.account_balances(), ledger.reservations(), ledger.frozen())


def test_store_rebuilds_the_same_ledger(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
        assert len(store.journal) == 4
    with LedgerStore.open(tmp_path) as store:
        assert state(store) == before
        assert store.ledger.account_balances() == store.ledger.recompute_balances()
        assert store.ledger.is_frozen("binance", "ETH")


def test_reissuing_operations_after_a_restart_posts_nothing_twice(tmp_path: Path) -> None:
    """A coordinator replaying its journal after a crash re-issues ledger ops by id."""
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
    later = T0 + timedelta(minutes=3)
    with LedgerStore.open(tmp_path) as store:
        store.ledger.reserve("t1", "binance", "USDT", D("3000"), later, order_id="o1",
                             cause="resumed")
        store.ledger.fill(Fill("tr1", "binance", "BTC/USDT", "buy", D("0.05"), D("30000"),
                               fee=D("1.5"), fee_currency="USDT", transfer_id="t1",
                               order_id="o1"), later)
        assert state(store) == before
        assert len(store.journal) == 4
        store.ledger.void("t1", later)  # the op the crash interrupted
        assert store.ledger.balance("binance", "USDT").reserved == D("0")
    with LedgerStore.open(tmp_path) as store:
        assert store.ledger.balance("binance", "USDT").available == D("8498.50")


def test_failed_journal_append_leaves_the_ledger_unchanged(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
        with Journal.open(tmp_path) as intruder:  # a second writer moves the head
            intruder.append("x", "note", "intruder", {}, T0)
        with pytest.raises(JournalError, match="another writer"):
            store.ledger.reserve("t2", "binance", "USDT", D("1"), T0)
        assert state(store) == before


def test_tampered_ledger_store_is_refused_at_open(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
    with diskcache.Cache(str(tmp_path)) as raw:
        record = json.loads(raw[2])
        record["data"]["postings"][1][2] = "30000"  # inflate the reservation
        raw[2] = canonical_json(record)
    with pytest.raises(JournalIntegrityError) as info:
        LedgerStore.open(tmp_path)
    assert info.value.seq == 2


def test_entry_violating_ledger_invariants_is_refused_at_open(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        forged = store.ledger.entries[1].to_json()
    forged["id"] = "reserve:t9"
    forged["tags"]["transfer_id"] = "t9"
    forged["postings"] = [["assets:binance:USDT:available", "USDT", "-99999"],
                          ["assets:binance:USDT:reserved", "USDT", "99999"]]
    with Journal.open(tmp_path) as journal:  # hash-valid, but the ledger must refuse it
        journal.append("t9", "ledger.reserve", "forged", forged, T0)
    with pytest.raises(JournalIntegrityError, match="refused on replay") as info:
        LedgerStore.open(tmp_path)
    assert info.value.seq == 5


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from decimal import Decimal as D
    from trading.ledger import Fill
    from trading.store import LedgerStore
    store = LedgerStore.open(sys.argv[1])
    now = datetime(2026, 11, 24, tzinfo=UTC)
    store.ledger.deposit("usdt", "binance", "USDT", D("1000000"), now)
    i = 0
    while True:
        store.ledger.reserve(f"t{i}", "binance", "USDT", D("31"), now, order_id=f"o{i}")
        store.ledger.fill(Fill(f"tr{i}", "binance", "BTC/USDT", "buy", D("0.001"), D("30000"),
                               transfer_id=f"t{i}"), now)
        store.ledger.void(f"t{i}", now)
        print(i, flush=True)
        i += 1
""")


def test_acknowledged_ledger_operations_survive_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "ledger")],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    last = -1
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            last = int(line)
            if last == 60:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    with LedgerStore.open(tmp_path / "ledger") as store:
        ledger = store.ledger
        assert all(ledger.entry(f"void:t{i}") is not None for i in range(last + 1))
        assert ledger.account_balances() == ledger.recompute_balances()
        # an operation cut short by the kill is completed by re-issuing it
        for res in ledger.reservations(open_only=True):
            ledger.void(res.transfer_id, T0)
        n = sum(1 for e in ledger.entries if e.kind.value == "fill")
        usdt = ledger.balance("binance", "USDT")
        assert usdt.reserved == 0 and usdt.available == D("1000000") - n * D("30")
        assert ledger.balance("binance", "BTC").available == n * D("0.001")


# ------------------------------------------------------------------ snapshots


def full_replay_state(directory: Path) -> tuple:
    """The state a store rebuilds from its journal alone (the snapshot moved aside)."""
    snapshot = directory / FILE_NAME
    kept = snapshot.read_bytes() if snapshot.exists() else None
    snapshot.unlink(missing_ok=True)
    try:
        with LedgerStore.open(directory) as store:
            assert store.restored_from == 0
            result = state(store)
            store._snapshot_seq = len(store.journal)  # leave no snapshot behind
        return result
    finally:
        (directory / FILE_NAME).unlink(missing_ok=True)
        if kept is not None:
            snapshot.write_bytes(kept)


def test_a_clean_close_snapshots_and_the_next_open_starts_from_it(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
    assert (tmp_path / FILE_NAME).exists()
    with LedgerStore.open(tmp_path) as store:
        assert store.restored_from == 4
        assert store.ledger.entry_count() == 4
        assert (store.ledger.account_balances(), store.ledger.reservations(),
                store.ledger.frozen()) == before[1:]
        assert store.ledger.entries == before[0]  # read back from the journal when asked
        assert store.ledger.recompute_balances() == store.ledger.account_balances()
    assert full_replay_state(tmp_path) == before


def test_old_operations_reissued_after_a_snapshot_start_post_nothing_twice(
        tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
    later = T0 + timedelta(minutes=3)
    with LedgerStore.open(tmp_path) as store:
        assert store.restored_from == 4
        again = store.ledger.fill(Fill("tr1", "binance", "BTC/USDT", "buy", D("0.05"),
                                       D("30000"), fee=D("1.5"), fee_currency="USDT",
                                       transfer_id="t1", order_id="o1"), later)
        assert again == before[0][2] and len(store.journal) == 4
        with pytest.raises(IdempotencyConflict):
            store.ledger.reserve("t1", "binance", "USDT", D("2999"), later, order_id="o1")
        store.ledger.void("t1", later)
        assert len(store.journal) == 5
    with LedgerStore.open(tmp_path) as store:
        assert store.restored_from == 5
        assert store.ledger.balance("binance", "USDT").available == D("8498.50")


def _rewrite_snapshot(directory: Path, change: Any, *, redigest: bool) -> None:
    """Edit the snapshot's state; with ``redigest`` its digest is recomputed (a consistent
    file whose content is wrong), else it is left stale (a torn or edited file)."""
    snapshot = read_snapshot(directory, "ledger")
    assert snapshot is not None
    changed = json.loads(json.dumps(snapshot.state))
    change(changed)
    if redigest:
        write_snapshot(directory, Snapshot("ledger", snapshot.head, changed))
    else:
        header, _, _ = (directory / FILE_NAME).read_bytes().partition(b"\n")
        (directory / FILE_NAME).write_bytes(header + b"\n" + json.dumps(changed).encode())


def _inflate_available(state: dict) -> None:
    for row in state["balances"]:
        if row[0] == "assets:binance:USDT:available":
            row[2] = str(D(row[2]) + 1000)


def _drop_reservation(state: dict) -> None:
    state["reservations"] = []


@pytest.mark.parametrize(("change", "redigest"), [
    (_inflate_available, False),   # edited, digest stale
    (_inflate_available, True),    # digest recomputed: currencies no longer sum to zero
    (_drop_reservation, True),     # reserved balance no longer matches its reservations
    (lambda state: state["entries"].pop(), True),  # fewer ids than journal records
], ids=["edited", "unbalanced", "reservations", "ids"])
def test_a_tampered_snapshot_is_ignored_for_a_full_replay(
        tmp_path: Path, change: Any, redigest: bool) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
    _rewrite_snapshot(tmp_path, change, redigest=redigest)
    with LedgerStore.open(tmp_path) as store:
        assert store.restored_from == 0
        assert state(store) == before


def test_a_torn_snapshot_is_ignored(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        before = state(store)
    text = (tmp_path / FILE_NAME).read_bytes()
    (tmp_path / FILE_NAME).write_bytes(text[: len(text) // 2])
    with LedgerStore.open(tmp_path) as store:
        assert store.restored_from == 0 and state(store) == before


def test_a_snapshot_older_than_the_journal_is_used_and_the_rest_replayed(
        tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
    old = (tmp_path / FILE_NAME).read_bytes()
    with LedgerStore.open(tmp_path) as store:
        store.ledger.void("t1", T0)
        store.ledger.reserve("t2", "binance", "USDT", D("100"), T0, order_id="o2")
        store.ledger.unfreeze("u1", "binance", "ETH", T0, reason="checked")
        after = state(store)
    (tmp_path / FILE_NAME).write_bytes(old)  # as if the last clean stop never happened
    with LedgerStore.open(tmp_path) as store:
        assert store.restored_from == 4
        assert state(store) == after
    assert full_replay_state(tmp_path) == after


def test_a_snapshot_the_journal_does_not_hold_is_ignored(tmp_path: Path) -> None:
    other = tmp_path / "other"
    with LedgerStore.open(other) as store:  # another ledger's journal, further along
        trade_some(store)
        store.ledger.void("t1", T0)
    mine = tmp_path / "mine"
    with LedgerStore.open(mine) as store:
        store.ledger.deposit("usdt", "binance", "USDT", D("5"), T0)
        before = state(store)
    (mine / FILE_NAME).write_bytes((other / FILE_NAME).read_bytes())
    with LedgerStore.open(mine) as store:
        assert store.restored_from == 0 and state(store) == before


def test_a_journal_edited_before_the_snapshot_is_still_refused(tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
    with diskcache.Cache(str(tmp_path)) as raw:
        record = json.loads(raw[1])
        record["data"]["postings"][0][2] = "20000"
        raw[1] = canonical_json(record)
    with pytest.raises(JournalIntegrityError) as info:
        LedgerStore.open(tmp_path)
    assert info.value.seq == 1


def test_a_snapshot_is_due_every_so_many_entries_and_a_quarter_of_the_journal(
        tmp_path: Path) -> None:
    with LedgerStore.open(tmp_path) as store:
        trade_some(store)
        assert store.snapshot_due(4) and not store.snapshot_due(5)
        assert store.snapshot() is True and not store.snapshot_due(1)
        assert store.snapshot() is False  # nothing new since
        for i in range(8):
            store.ledger.reserve(f"r{i}", "binance", "USDT", D("1"), T0)
        assert store.snapshot() is True and len(store.journal) == 12
        store.ledger.reserve("r8", "binance", "USDT", D("1"), T0)
        store.ledger.reserve("r9", "binance", "USDT", D("1"), T0)
        assert not store.snapshot_due(1)  # 2 entries of 14: less than a quarter
        store.ledger.reserve("r10", "binance", "USDT", D("1"), T0)
        assert store.snapshot_due(1)
    with LedgerStore.open(tmp_path) as store:  # the clean close wrote one at the head
        assert store.restored_from == 15
