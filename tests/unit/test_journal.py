"""The durable journal on a real directory: chain, durability settings, tamper detection."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import diskcache
import pytest

from trading.errors import JournalError, JournalIntegrityError
from trading.journal import GENESIS_HASH, Journal, JournalHead, canonical_json

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]


def fill_journal(directory: Path, n: int = 5) -> list:
    with Journal.open(directory) as journal:
        return [
            journal.append(f"tx-{i % 2}", "state", f"step {i}",
                           {"state": "open" if i < n - 1 else "settled", "i": i},
                           T0 + timedelta(seconds=i))
            for i in range(n)
        ]


def tamper(directory: Path, seq: int, change) -> None:  # type: ignore[no-untyped-def]
    """Rewrite stored record ``seq`` in place, as an editor of the database would."""
    with diskcache.Cache(str(directory)) as raw:
        record = json.loads(raw.get(seq))
        change(record)
        raw.set(seq, canonical_json(record))


def test_append_and_replay_survive_reopen(tmp_path: Path) -> None:
    written = fill_journal(tmp_path)
    with Journal.open(tmp_path) as journal:
        assert len(journal) == 5
        assert list(journal.replay()) == written
        assert [r.seq for r in journal.replay(from_seq=4)] == [4, 5]
        assert written[0].prev_hash == GENESIS_HASH
        assert all(b.prev_hash == a.hash for a, b in zip(written, written[1:], strict=False))
        assert journal.head == JournalHead(5, written[-1].hash)
        nxt = journal.append("tx-9", "state", "after reopen", {"state": "prepared"}, T0)
        assert nxt.seq == 6 and nxt.prev_hash == written[-1].hash


def test_sqlite_synchronous_is_full_and_stays_full_after_reopen(tmp_path: Path) -> None:
    with Journal.open(tmp_path) as journal:
        assert journal.sqlite_synchronous() == 2  # FULL
        journal.append("tx", "state", "c", {}, T0)
    with Journal.open(tmp_path) as journal:
        assert journal.sqlite_synchronous() == 2
        assert journal._cache._sql("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_data_is_returned_as_a_copy(tmp_path: Path) -> None:
    fill_journal(tmp_path, 1)
    with Journal.open(tmp_path) as journal:
        first = next(journal.replay())
        first.data["i"] = 99
        assert next(journal.replay()).data["i"] == 0


def test_edited_record_is_detected(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    tamper(tmp_path, 3, lambda r: r["data"].update(state="filled"))
    with pytest.raises(JournalIntegrityError) as info:
        Journal.open(tmp_path)
    assert info.value.seq == 3 and "hash" in info.value.problem


def test_edit_with_recomputed_own_hash_breaks_the_next_link(tmp_path: Path) -> None:
    fill_journal(tmp_path)

    def rehash(record: dict) -> None:
        record["cause"] = "forged"
        body = {k: v for k, v in record.items() if k != "hash"}
        record["hash"] = hashlib.sha256(canonical_json(body).encode()).hexdigest()

    tamper(tmp_path, 2, rehash)
    with pytest.raises(JournalIntegrityError) as info:
        Journal.open(tmp_path)
    assert info.value.seq == 3 and "prev_hash" in info.value.problem


def test_truncated_tail_is_detected_by_the_head_anchor(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        del raw[5]
        del raw[4]
    with pytest.raises(JournalIntegrityError, match="truncated: head anchor says 5") as info:
        Journal.open(tmp_path)
    assert info.value.seq == 4


def test_gap_is_detected(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        del raw[2]
    with pytest.raises(JournalIntegrityError, match="gap") as info:
        Journal.open(tmp_path)
    assert info.value.seq == 2


def test_reordered_records_are_detected(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        second, third = raw[2], raw[3]
        raw[2], raw[3] = third, second
    with pytest.raises(JournalIntegrityError, match="reordered") as info:
        Journal.open(tmp_path)
    assert info.value.seq == 2


def test_reordered_records_with_renumbered_seq_are_detected(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        second, third = json.loads(raw[2]), json.loads(raw[3])
        second["seq"], third["seq"] = 3, 2
        raw[2], raw[3] = canonical_json(third), canonical_json(second)
    with pytest.raises(JournalIntegrityError) as info:
        Journal.open(tmp_path)
    assert info.value.seq == 2


def test_missing_head_anchor_is_detected(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        del raw["head"]
    with pytest.raises(JournalIntegrityError, match="head anchor is missing"):
        Journal.open(tmp_path)


def test_record_beyond_the_head_is_detected(tmp_path: Path) -> None:
    written = fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        raw[6] = raw[5]
    with pytest.raises(JournalIntegrityError, match="beyond the head anchor"):
        Journal.open(tmp_path)
    assert written


def test_malformed_record_is_detected(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with diskcache.Cache(str(tmp_path)) as raw:
        raw[4] = "{not json"
    with pytest.raises(JournalIntegrityError, match="not valid JSON"):
        Journal.open(tmp_path)


def test_external_anchor_detects_rollback_and_substitution(tmp_path: Path) -> None:
    written = fill_journal(tmp_path)
    good = JournalHead(3, written[2].hash)
    Journal.open(tmp_path, anchor=good).close()
    Journal.open(tmp_path, anchor=JournalHead(5, written[4].hash)).close()
    with pytest.raises(JournalIntegrityError, match="rolled back"):
        Journal.open(tmp_path, anchor=JournalHead(7, "ab" * 32))
    with pytest.raises(JournalIntegrityError, match="external anchor"):
        Journal.open(tmp_path, anchor=JournalHead(3, written[1].hash))


def test_edit_before_a_checkpoint_is_still_detected(tmp_path: Path) -> None:
    """Records before a checkpoint are not read into state, but their chain is verified."""
    written = fill_journal(tmp_path)
    tamper(tmp_path, 2, lambda r: r.update(cause="forged"))
    with pytest.raises(JournalIntegrityError) as info:
        Journal.open(tmp_path, checkpoint=JournalHead(4, written[3].hash), visit=lambda r: None)
    assert info.value.seq == 2 and "hash" in info.value.problem


def test_a_held_checkpoint_visits_only_the_records_after_it(tmp_path: Path) -> None:
    written = fill_journal(tmp_path)
    seen: list[int] = []
    refused: list[str] = []
    with Journal.open(tmp_path, checkpoint=JournalHead(3, written[2].hash),
                      visit=lambda r: seen.append(r.seq),
                      on_checkpoint_refused=refused.append) as journal:
        assert seen == [4, 5] and refused == []
        assert journal.read(2) == written[1]


@pytest.mark.parametrize("checkpoint", [
    JournalHead(3, "ab" * 32),   # another chain's record 3
    JournalHead(9, "ab" * 32),   # beyond the journal (a snapshot newer than the journal)
], ids=["other-hash", "beyond-head"])
def test_a_checkpoint_the_journal_does_not_hold_means_a_full_replay(
    tmp_path: Path, checkpoint: JournalHead
) -> None:
    fill_journal(tmp_path)
    seen: list[int] = []
    refused: list[str] = []
    Journal.open(tmp_path, checkpoint=checkpoint, visit=lambda r: seen.append(r.seq),
                 on_checkpoint_refused=refused.append).close()
    assert seen == [1, 2, 3, 4, 5] and len(refused) == 1


def test_read_after_open_checks_the_record_again(tmp_path: Path) -> None:
    fill_journal(tmp_path)
    with Journal.open(tmp_path) as journal:
        with diskcache.Cache(str(tmp_path)) as raw:
            record = json.loads(raw.get(2))
            record["cause"] = "forged"
            raw.set(2, canonical_json(record))
        with pytest.raises(JournalIntegrityError, match="read after open"):
            journal.read(2)
        with pytest.raises(JournalIntegrityError, match="missing"):
            journal.read(6)


@pytest.mark.parametrize(("args", "message"), [
    (("tx", "state", "c", {"amount": 0.1}, T0), "float"),
    (("tx", "state", "c", {"nested": [{"x": {1, 2}}]}, T0), "set"),
    (("tx", "state", "c", {1: "x"}, T0), "not a string"),
    (("", "state", "c", {}, T0), "stream"),
    (("tx", "", "c", {}, T0), "kind"),
    (("tx", "state", "c", {}, datetime(2026, 1, 1)), "timezone-aware"),
    (("tx", "state", "c", ["x"], T0), "dict"),
])
def test_bad_appends_are_refused_and_write_nothing(
    tmp_path: Path, args: tuple, message: str
) -> None:
    with Journal.open(tmp_path) as journal:
        journal.append("tx", "state", "ok", {}, T0)
        with pytest.raises(JournalError, match=message):
            journal.append(*args)
        assert len(journal) == 1
    with Journal.open(tmp_path) as journal:
        assert len(journal) == 1


def test_latest_state_by_transaction_skips_terminal_streams(tmp_path: Path) -> None:
    fill_journal(tmp_path, 5)  # tx-0 ends with i=4 "settled"; tx-1 ends with i=3 "open"
    with Journal.open(tmp_path) as journal:
        latest = journal.latest_state_by_transaction()
        assert {s: r.data["i"] for s, r in latest.items()} == {"tx-0": 4, "tx-1": 3}
        live = journal.latest_state_by_transaction(lambda r: r.data["state"] == "settled")
        assert list(live) == ["tx-1"]


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    first = Journal.open(tmp_path)
    second = Journal.open(tmp_path)
    try:
        first.append("tx", "state", "a", {}, T0)
        with pytest.raises(JournalError, match="another writer"):
            second.append("tx", "state", "b", {}, T0)
    finally:
        first.close()
        second.close()
    with Journal.open(tmp_path) as journal:
        assert [r.cause for r in journal.replay()] == ["a"]


WRITER = textwrap.dedent("""
    import sys
    from datetime import UTC, datetime
    from trading.journal import Journal
    journal = Journal.open(sys.argv[1])
    i = 0
    while True:
        record = journal.append(f"tx-{i % 7}", "state", "load", {"i": i, "pad": "x" * 200},
                                datetime.now(UTC))
        print(record.seq, record.hash, flush=True)
        i += 1
""")


def test_every_acknowledged_record_survives_sigkill(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "journal")],
        stdout=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    acked: list[tuple[int, str]] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            seq, digest = line.split()
            acked.append((int(seq), digest))
            if len(acked) == 300:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    with Journal.open(tmp_path / "journal") as journal:
        stored = {r.seq: r.hash for r in journal.replay()}
    assert len(stored) >= len(acked)
    assert all(stored[seq] == digest for seq, digest in acked)
