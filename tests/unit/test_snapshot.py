"""Snapshot files: written whole or not at all, read back only if their digest matches."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading.journal import JournalHead
from trading.snapshot import FILE_NAME, Snapshot, SnapshotError, read_snapshot, write_snapshot

HEAD = JournalHead(7, "ab" * 32)


def test_a_written_snapshot_reads_back_equal(tmp_path: Path) -> None:
    snapshot = Snapshot("ledger", HEAD, {"rows": [["a", "1.10"]], "note": "é"})
    write_snapshot(tmp_path, snapshot)
    assert read_snapshot(tmp_path, "ledger") == snapshot
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temporary file left


def test_no_file_is_no_snapshot(tmp_path: Path) -> None:
    assert read_snapshot(tmp_path, "ledger") is None


@pytest.mark.parametrize("spoil", [
    lambda raw: raw[:-3],                                  # torn
    lambda raw: raw.replace(b'"1.10"', b'"9.10"'),         # edited state
    lambda raw: raw.replace(b'"seq": 7', b'"seq": 8'),     # moved to another head
    lambda raw: raw.split(b"\n", 1)[1],                    # header lost
    lambda raw: b"",
], ids=["torn", "edited", "other-head", "no-header", "empty"])
def test_a_spoiled_file_is_refused(tmp_path: Path, spoil) -> None:  # type: ignore[no-untyped-def]
    write_snapshot(tmp_path, Snapshot("ledger", HEAD, {"rows": [["a", "1.10"]]}))
    path = tmp_path / FILE_NAME
    path.write_bytes(spoil(path.read_bytes()))
    with pytest.raises(SnapshotError):
        read_snapshot(tmp_path, "ledger")


def test_a_snapshot_of_another_kind_is_refused(tmp_path: Path) -> None:
    write_snapshot(tmp_path, Snapshot("transactions", HEAD, {}))
    with pytest.raises(SnapshotError, match="not a ledger snapshot"):
        read_snapshot(tmp_path, "ledger")
