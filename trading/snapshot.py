"""Snapshots of state derived from a journal, so a restart need not replay every record.

A snapshot is a cache, never a source of truth: it holds the state rebuilt from a journal's
records ``1..seq`` and the head ``(seq, hash)`` it was taken at. It is trusted only if its
own digest matches its content *and* the journal still holds that head (the record at
``seq`` has that hash, checked by ``Journal.open(checkpoint=...)``); the journal's whole
chain is verified at every open regardless. Anything else — no file, a torn or edited file,
a different kind or format, a head the journal does not hold (another journal's, or one
newer than the journal) — means a full replay, as if there were no snapshot.

File: one header line ``{"format", "kind", "seq", "hash", "digest"}`` then the state as
JSON; ``digest`` is sha256 over kind, head and the state's bytes. Written to a temporary
file, fsynced, renamed over the old one and the directory fsynced, so a crash leaves the
old snapshot or the new one, never a mix. Like the journal's chain the digest is unkeyed:
it catches corruption, bugs and naive edits, not a writer who recomputes it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import attrs

from trading.journal import JournalHead

__all__ = ["FILE_NAME", "Snapshot", "SnapshotError", "read_snapshot", "write_snapshot"]

FILE_NAME = "snapshot.json"
_FORMAT = 1


class SnapshotError(Exception):
    """Raised when a snapshot file is unreadable or fails its digest; the caller replays."""


@attrs.frozen(slots=True)
class Snapshot:
    """State derived from a journal's records up to and including ``head``."""

    kind: str
    head: JournalHead
    state: Any


def _digest(kind: str, head: JournalHead, body: bytes) -> str:
    digest = hashlib.sha256(f"{kind}\n{head.seq}\n{head.hash}\n".encode())
    digest.update(body)
    return digest.hexdigest()


def write_snapshot(directory: str | Path, snapshot: Snapshot) -> Path:
    """Durably replace the snapshot in ``directory``; returns its path."""
    directory = Path(directory)
    body = json.dumps(snapshot.state, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode()
    header = json.dumps({"format": _FORMAT, "kind": snapshot.kind, "seq": snapshot.head.seq,
                         "hash": snapshot.head.hash,
                         "digest": _digest(snapshot.kind, snapshot.head, body)})
    path = directory / FILE_NAME
    temporary = directory / f".{FILE_NAME}.{os.getpid()}.tmp"
    with open(temporary, "wb") as file:
        file.write(header.encode() + b"\n" + body)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    return path


def read_snapshot(directory: str | Path, kind: str) -> Snapshot | None:
    """The snapshot of ``kind`` in ``directory``, or None if there is none.

    Raises SnapshotError if the file is there but torn, edited, of another kind or format.
    """
    path = Path(directory) / FILE_NAME
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    header_line, newline, body = raw.partition(b"\n")
    try:
        header = json.loads(header_line)
        head = JournalHead(int(header["seq"]), str(header["hash"]))
        if not newline or header["format"] != _FORMAT or header["kind"] != kind:
            raise SnapshotError(f"{path}: not a {kind} snapshot of format {_FORMAT}")
        if header["digest"] != _digest(kind, head, body):
            raise SnapshotError(f"{path}: content does not match its digest (torn or edited)")
        state = json.loads(body)
    except SnapshotError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise SnapshotError(f"{path}: unreadable ({error})") from None
    return Snapshot(kind=kind, head=head, state=state)
