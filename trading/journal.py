"""A durable, hash-chained, append-only journal on diskcache (SQLite, synchronous=FULL).

Each record carries ``seq, time, stream, kind, cause, data, prev_hash, hash`` where
``hash = sha256(canonical JSON of every other field)`` and ``prev_hash`` is the hash
of the record before (64 zeros for the first). Records live under integer keys
``1..N``; a head anchor ``{"seq": N, "hash": H}`` lives under the key ``"head"`` and
is written in the same SQLite transaction as record N, so the two can never
disagree after a crash. :meth:`Journal.append` returns only after that transaction
committed with ``synchronous=FULL`` (WAL fsynced): an acknowledged record survives
``kill -9`` and power loss.

What :meth:`Journal.verify` (run at open) detects:

- an edited record (its hash no longer matches its content, or the next record's
  ``prev_hash`` no longer matches it);
- a missing record in the middle (gap) and records swapped between keys
  (the stored ``seq`` differs from its key, or the chain breaks);
- a truncated tail: the head anchor names a record that is not there;
- records beyond the anchor, a missing anchor next to records, malformed JSON;
- a rolled-back journal, if the caller passes an ``anchor`` it kept elsewhere
  (e.g. the head it logged last time) and that record is gone or different.

Verifying reads each record's chain fields (``hash``, ``prev_hash``, ``seq``) from the
stored text and hashes the text with its ``hash`` member cut out, without decoding it: a
body that hashes to its own ``hash`` is the writer's canonical record, and any re-formatted
record is refused as edited. Only the records a caller visits are decoded; with a
``checkpoint`` (the head a snapshot of derived state was taken at, see ``trading.snapshot``)
those are the records after it, while the whole chain is still verified.

Record times are injected by the caller and are not required to be monotonic (a
clock may step back across restarts); order is carried by ``seq`` alone.

What it cannot detect: a writer who rewrites records *and* recomputes every later
hash and the head (the chain is unkeyed: it guards against corruption, bugs and
naive edits, not against an adversary with write access); deleting the whole
journal; replacing the database with an older consistent copy when no external
anchor is given.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import attrs
import diskcache

from trading.errors import JournalError, JournalIntegrityError

__all__ = ["GENESIS_HASH", "Journal", "JournalHead", "JournalRecord", "canonical_json"]

GENESIS_HASH = "0" * 64
MAX_RECORD_CHARS = 1 << 20
_HEAD_KEY = "head"
_SCAN_CHUNK = 2000
_FIELDS = frozenset({"seq", "time", "stream", "kind", "cause", "data", "prev_hash", "hash"})

# Settings that make the cache a journal: never evict, keep every value inside SQLite
# (diskcache writes large values to side files without fsync), fsync every commit.
_CACHE_SETTINGS: dict[str, Any] = {
    "eviction_policy": "none",
    "cull_limit": 0,
    "size_limit": 1 << 62,
    "statistics": 0,
    "sqlite_journal_mode": "wal",
    "sqlite_synchronous": 2,  # FULL
    "disk_min_file_size": 1 << 30,
}


def canonical_json(value: Any) -> str:
    """Deterministic JSON text (sorted keys, no spaces) that hashing relies on."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def _hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(body).encode()).hexdigest()


# The members after ``data`` in a canonical record, in sorted-key order. None of them can
# contain an unescaped quote, so the last ``,"hash":"`` in a record's text is its own.
_TAIL = re.compile(
    r',"hash":"(?P<hash>[0-9a-f]{64})","kind":"[^"\\]*(?:\\.[^"\\]*)*",'
    r'"prev_hash":"(?P<prev>[0-9a-f]{64})","seq":(?P<seq>0|[1-9][0-9]*),'
    r'"stream":"[^"\\]*(?:\\.[^"\\]*)*","time":"[^"\\]*"\}')


def _chain_fields(text: object) -> tuple[str, str, int, bool] | None:
    """``(hash, prev_hash, seq, hash matches)`` read from a stored record's text without
    parsing it, or None if its tail is not the writer's canonical form.

    Enough to verify the chain: a text whose body (the ``hash`` member cut out) hashes to
    its own ``hash`` is the writer's record, so nothing else in it needs reading.
    """
    if not isinstance(text, str):
        return None
    at = text.rfind(',"hash":"')
    if at < 0:
        return None
    tail = _TAIL.fullmatch(text, at)
    if tail is None:
        return None
    digest = tail["hash"]
    body = hashlib.sha256(text[:at].encode())
    body.update(text[at + 74:].encode())  # past ',"hash":"', 64 hex digits and '"'
    return digest, tail["prev"], int(tail["seq"]), body.hexdigest() == digest


def _check_json(value: Any, where: str) -> None:
    """Refuse anything canonical JSON would not round-trip exactly (floats included)."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise JournalError(f"{where}: key {key!r} is not a string")
            _check_json(item, f"{where}.{key}")
        return
    hint = " (money goes as a decimal string)" if isinstance(value, float) else ""
    raise JournalError(f"{where}: {type(value).__name__} is not allowed in journal data{hint}")


@attrs.frozen(slots=True)
class JournalHead:
    """The last record's position: ``seq`` 0 and the genesis hash for an empty journal."""

    seq: int
    hash: str


@attrs.frozen(slots=True)
class JournalRecord:
    """One verified journal record; ``data`` is a fresh copy the caller may keep."""

    seq: int
    time: datetime
    stream: str
    kind: str
    cause: str
    data: dict[str, Any]
    prev_hash: str
    hash: str


class Journal:
    """Append-only record of state changes; one writer per directory."""

    def __init__(self, cache: diskcache.Cache, head: JournalHead) -> None:
        self._cache = cache
        self._head = head
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        anchor: JournalHead | None = None,
        visit: Callable[[JournalRecord], None] | None = None,
        checkpoint: JournalHead | None = None,
        on_checkpoint_refused: Callable[[str], None] | None = None,
    ) -> Journal:
        """Open (creating if needed) and verify the journal in ``directory``.

        ``visit`` sees every record in order during that one verifying pass (to rebuild
        state without reading the journal twice); if it raises, the open fails.
        With a ``checkpoint`` (the head a snapshot of derived state was taken at), ``visit``
        sees only the records after it, provided the stored record at its seq has its hash;
        otherwise ``on_checkpoint_refused(reason)`` is called first and ``visit`` sees every
        record (a full replay). Either way the whole chain is verified.
        Raises JournalIntegrityError if the stored records fail verification, or if
        ``anchor`` (a head remembered outside this database) is not in the chain.
        """
        cache = diskcache.Cache(str(directory), **_CACHE_SETTINGS)
        try:
            journal = cls(cache, cls._read_head(cache))
            visit_from = 1
            if checkpoint is not None:
                refused = journal._checkpoint_refused(checkpoint)
                if refused is None:
                    visit_from = checkpoint.seq + 1
                elif on_checkpoint_refused is not None:
                    on_checkpoint_refused(refused)
            journal.verify(anchor=anchor, visit=visit, visit_from=visit_from)
        except BaseException:
            cache.close()
            raise
        return journal

    @property
    def head(self) -> JournalHead:
        return self._head

    @property
    def directory(self) -> str:
        return str(self._cache.directory)

    def __len__(self) -> int:
        return self._head.seq

    def sqlite_synchronous(self) -> int:
        """The live ``PRAGMA synchronous`` of this journal's connection (2 = FULL)."""
        return int(self._cache._sql("PRAGMA synchronous").fetchone()[0])

    def close(self) -> None:
        self._cache.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def append(
        self, stream: str, kind: str, cause: str, data: dict[str, Any], now: datetime
    ) -> JournalRecord:
        """Append one record; it is durably committed when this returns.

        Raises JournalError (nothing written) for empty stream/kind, a naive ``now``,
        or data that is not plain JSON (floats included), or if another writer
        moved the head underneath this one.
        """
        for name, value in (("stream", stream), ("kind", kind)):
            if not isinstance(value, str) or not value:
                raise JournalError(f"{name} must be a non-empty string, got {value!r}")
        if not isinstance(cause, str):
            raise JournalError(f"cause must be a string, got {cause!r}")
        if not isinstance(now, datetime) or now.tzinfo is None:
            raise JournalError(f"now must be a timezone-aware datetime, got {now!r}")
        if not isinstance(data, dict):
            raise JournalError(f"data must be a dict, got {type(data).__name__}")
        _check_json(data, "data")
        with self._lock:
            head = self._head
            body = {
                "seq": head.seq + 1, "time": now.isoformat(), "stream": stream, "kind": kind,
                "cause": cause, "data": data, "prev_hash": head.hash,
            }
            digest = _hash(body)
            text = canonical_json({**body, "hash": digest})
            if len(text) > MAX_RECORD_CHARS:
                raise JournalError(f"record of {len(text)} chars exceeds {MAX_RECORD_CHARS}")
            new_head = JournalHead(head.seq + 1, digest)
            with self._cache.transact():
                if self._read_head(self._cache) != head:
                    raise JournalError("journal head moved: another writer uses this directory")
                self._cache.set(new_head.seq, text)
                self._cache.set(_HEAD_KEY, canonical_json(attrs.asdict(new_head)))
            self._head = new_head
        return self._to_record(json.loads(text))

    def verify(
        self,
        *,
        anchor: JournalHead | None = None,
        visit: Callable[[JournalRecord], None] | None = None,
        visit_from: int = 1,
    ) -> int:
        """Check the whole chain against the head anchor; return the record count.

        Records from ``visit_from`` on reach ``visit`` as they are checked; a failure found
        later still raises, so a caller must discard what it built if this raises.
        """
        count = 0
        parse_from = visit_from if visit is not None else self._head.seq + 1
        for seq, digest, record in self._verified(parse_from):
            count += 1
            if record is not None and visit is not None:
                visit(record)
            if anchor is not None and seq == anchor.seq and digest != anchor.hash:
                raise JournalIntegrityError(
                    seq, f"differs from the external anchor (hash {anchor.hash[:12]}…)"
                )
        if anchor is not None and anchor.seq > count:
            raise JournalIntegrityError(
                anchor.seq, f"external anchor names seq {anchor.seq}, journal has {count}: "
                "rolled back or truncated with its head"
            )
        expected_keys = count + (1 if count else 0)
        if len(self._cache) != expected_keys:
            raise JournalIntegrityError(None, self._describe_extra_keys())
        return count

    def replay(self, from_seq: int = 1) -> Iterator[JournalRecord]:
        """Yield records ``from_seq..head`` in order, checking the chain as it goes.

        The chain is always checked from seq 1 so a later start cannot hide an edit.
        """
        for _, _, record in self._verified(from_seq):
            if record is not None:
                yield record

    def read(self, seq: int) -> JournalRecord:
        """One record by its seq, for state kept on disk rather than in memory.

        The chain was verified at open and this process is its one writer; the record's own
        hash is checked again. Raises JournalIntegrityError if it is missing or edited.
        """
        text = self._cache.get(seq) if 1 <= seq <= self._head.seq else None
        if text is None:
            raise JournalIntegrityError(seq, "record missing (read after open)")
        fields = _chain_fields(text)
        if fields is None or fields[2] != seq or not fields[3]:
            raise JournalIntegrityError(seq, "content does not match its hash (read after open)")
        return self._to_record(self._parse(seq, text))

    def _verified(self, parse_from: int) -> Iterator[tuple[int, str, JournalRecord | None]]:
        """``(seq, hash, record)`` for every stored record, checking the chain as it goes;
        ``record`` is parsed only from ``parse_from`` on (None before: checked, not read).
        """
        prev_hash = GENESIS_HASH
        head = self._read_head(self._cache)
        for seq, text in self._stored_texts(head.seq):
            if text is None:
                raise JournalIntegrityError(seq, self._describe_missing(seq, head))
            fields = _chain_fields(text)
            if fields is None:
                self._parse(seq, text)  # names what is wrong with it, if it can
                raise JournalIntegrityError(seq, "content does not match its hash (edited)")
            digest, prev, stored_seq, hash_matches = fields
            if stored_seq != seq:
                raise JournalIntegrityError(
                    seq, f"record stored under seq {seq} says seq {stored_seq} (reordered)"
                )
            if prev != prev_hash:
                raise JournalIntegrityError(
                    seq, "prev_hash does not match the previous record (edited or reordered)"
                )
            if not hash_matches:
                raise JournalIntegrityError(seq, "content does not match its hash (edited)")
            prev_hash = digest
            yield seq, digest, (self._to_record(self._parse(seq, text))
                                if seq >= parse_from else None)
        if prev_hash != head.hash:
            raise JournalIntegrityError(head.seq, "last record does not match the head anchor")

    def _checkpoint_refused(self, checkpoint: JournalHead) -> str | None:
        """Why the journal does not hold ``checkpoint`` (None if it does): one keyed read,
        before the verifying pass proves the rest of the chain."""
        if checkpoint.seq == 0:
            return None if checkpoint.hash == GENESIS_HASH else "checkpoint at seq 0 is not genesis"
        if checkpoint.seq > self._head.seq:
            return (f"checkpoint at seq {checkpoint.seq} is beyond the journal's head "
                    f"(seq {self._head.seq})")
        fields = _chain_fields(self._cache.get(checkpoint.seq))
        if fields is None or fields[0] != checkpoint.hash:
            return f"journal record {checkpoint.seq} does not have the checkpoint's hash"
        return None

    def latest_state_by_transaction(
        self, is_terminal: Callable[[JournalRecord], bool] | None = None
    ) -> dict[str, JournalRecord]:
        """The latest record of each stream, leaving out streams whose latest is terminal.

        What a coordinator resumes from after a restart.
        """
        latest: dict[str, JournalRecord] = {}
        for record in self.replay():
            latest[record.stream] = record
        if is_terminal is None:
            return latest
        return {stream: rec for stream, rec in latest.items() if not is_terminal(rec)}

    # ------------------------------------------------------------- internals

    def _stored_texts(self, last: int) -> Iterator[tuple[int, object]]:
        """``(seq, stored value or None)`` for ``1..last``, read in ordered key-range scans.

        One indexed range query per chunk instead of one ``get`` per record (on diskcache's
        own table and value decoding); chunks keep memory bounded and no cursor open
        across the caller's work.
        """
        select = ("SELECT key, mode, filename, value FROM Cache"
                  " WHERE raw = 1 AND key BETWEEN ? AND ? ORDER BY key")
        fetch = self._cache._disk.fetch
        for start in range(1, last + 1, _SCAN_CHUNK):
            stop = min(start + _SCAN_CHUNK - 1, last)
            found = {key: fetch(mode, filename, value, False)
                     for key, mode, filename, value in self._cache._sql(select, (start, stop))}
            for seq in range(start, stop + 1):
                yield seq, found.get(seq)

    @staticmethod
    def _read_head(cache: diskcache.Cache) -> JournalHead:
        text = cache.get(_HEAD_KEY)
        if text is None:
            if cache.get(1) is not None:
                raise JournalIntegrityError(None, "records exist but the head anchor is missing")
            return JournalHead(0, GENESIS_HASH)
        try:
            raw = json.loads(text)
            head = JournalHead(int(raw["seq"]), str(raw["hash"]))
        except (TypeError, ValueError, KeyError) as exc:
            raise JournalIntegrityError(None, f"head anchor is malformed: {exc}") from None
        return head

    def _parse(self, seq: int, text: object) -> dict[str, Any]:
        try:
            record = json.loads(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise JournalIntegrityError(seq, "record is not valid JSON") from None
        if not isinstance(record, dict) or set(record) != _FIELDS:
            raise JournalIntegrityError(seq, "record does not have the journal's fields")
        if record["seq"] != seq:
            raise JournalIntegrityError(
                seq, f"record stored under seq {seq} says seq {record['seq']} (reordered)"
            )
        return record

    def _describe_missing(self, seq: int, head: JournalHead) -> str:
        later = [k for k in range(seq + 1, head.seq + 1) if k in self._cache]
        if later:
            return f"record missing while later records exist (gap; next present is {later[0]})"
        return (
            f"truncated: head anchor says {head.seq} records, only {seq - 1} present"
        )

    def _describe_extra_keys(self) -> str:
        head = self._head.seq
        extra = [k for k in self._cache.iterkeys()
                 if not (k == _HEAD_KEY or (isinstance(k, int) and 1 <= k <= head))]
        return f"records or keys beyond the head anchor (seq {head}): {extra[:5]!r}"

    @staticmethod
    def _to_record(raw: dict[str, Any]) -> JournalRecord:
        return JournalRecord(
            seq=raw["seq"], time=datetime.fromisoformat(raw["time"]), stream=raw["stream"],
            kind=raw["kind"], cause=raw["cause"], data=raw["data"],
            prev_hash=raw["prev_hash"], hash=raw["hash"],
        )
