"""The shadow ledger: a pure double-entry core in Decimal.

Every change is an :class:`Entry` whose postings sum to zero per currency; balances
are derived from postings (cached incrementally, recomputable from the entries).
Reservations are pending transfers (available -> reserved) that fills or posts
consume and a void releases. Every operation is idempotent by its id: the same
request again returns the original entry, a different request under the same id
raises :class:`IdempotencyConflict`. A refused operation raises a typed
:class:`LedgerError` and leaves the ledger unchanged.

The ledger does no I/O. Durability is injected as ``on_record``: it is called with
each new, fully validated entry before the entry is applied in memory, so if it
raises (the store failed) the in-memory state is untouched (see ``trading.store``).
A ledger restored from a checkpoint (:meth:`Ledger.from_checkpoint`) holds the derived
state (balances, reservations, freezes) and only the ids of the entries before it; those
entries are read through an injected :class:`Archive` when asked for.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

import attrs

from trading import accounts
from trading.errors import (
    CurrencyFrozen,
    IdempotencyConflict,
    InsufficientAvailable,
    InvalidAccount,
    InvalidInput,
    Overfill,
    ReservationClosed,
    UnbalancedEntry,
    UnknownReservation,
)

__all__ = [
    "Archive",
    "Balance",
    "Entry",
    "EntryKind",
    "Fill",
    "Ledger",
    "Posting",
    "Reservation",
]

ZERO = Decimal(0)


class EntryKind(enum.StrEnum):
    """What an entry records; it decides how the entry changes reservations and freezes."""

    OPEN = "open"
    RESERVE = "reserve"
    POST = "post"
    VOID = "void"
    FILL = "fill"
    ADJUST = "adjust"
    FREEZE = "freeze"
    UNFREEZE = "unfreeze"


@attrs.frozen(slots=True)
class Posting:
    """One leg of an entry: ``amount`` of ``currency`` into ``account`` (negative = out)."""

    account: str
    currency: str
    amount: Decimal


@attrs.frozen(slots=True)
class Entry:
    """A balanced set of postings with its id, time, cause and request tags.

    ``tags`` hold the request that produced the entry (ids, amounts as strings); two
    requests are "the same" for idempotency when kind and tags are equal.
    """

    id: str
    kind: EntryKind
    time: datetime
    cause: str
    postings: tuple[Posting, ...]
    tags: tuple[tuple[str, str], ...]

    def tag(self, name: str) -> str | None:
        """The value of tag ``name``, or None."""
        for key, value in self.tags:
            if key == name:
                return value
        return None

    @property
    def request(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What idempotency compares: kind and request tags (not time, cause or postings)."""
        return (self.kind.value, self.tags)

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict; amounts as strings so no precision is lost."""
        return {
            "id": self.id,
            "kind": self.kind.value,
            "time": self.time.isoformat(),
            "cause": self.cause,
            "postings": [[p.account, p.currency, str(p.amount)] for p in self.postings],
            "tags": dict(self.tags),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Entry:
        """Inverse of :meth:`to_json`."""
        return cls(
            id=data["id"],
            kind=EntryKind(data["kind"]),
            time=datetime.fromisoformat(data["time"]),
            cause=data["cause"],
            postings=tuple(Posting(a, c, Decimal(v)) for a, c, v in data["postings"]),
            tags=_tags(data["tags"]),
        )


@attrs.frozen(slots=True)
class Balance:
    """A venue+currency position: ``total == available + reserved``."""

    available: Decimal
    reserved: Decimal

    @property
    def total(self) -> Decimal:
        return self.available + self.reserved


@attrs.frozen(slots=True)
class Reservation:
    """A pending transfer: ``amount`` held, of which ``consumed`` was posted or filled.

    Once voided, ``released`` is what went back to available and nothing more can be
    consumed.
    """

    transfer_id: str
    venue: str
    currency: str
    amount: Decimal
    consumed: Decimal = ZERO
    released: Decimal = ZERO
    voided: bool = False
    order_id: str | None = None

    @property
    def remaining(self) -> Decimal:
        return self.amount - self.consumed - self.released


@attrs.frozen(slots=True)
class Fill:
    """A trade reported by the venue, in the market's base amount and quote price.

    ``cost`` (quote) defaults to ``amount * price``. ``transfer_id`` names the
    reservation the spent currency comes from; without it (an adopted external
    order) it comes from available. A fee in the spent currency is taken from what
    is left of the reservation first, then from available; any other fee currency
    is paid from available.
    """

    trade_id: str
    venue: str
    symbol: str
    side: Literal["buy", "sell"]
    amount: Decimal
    price: Decimal
    cost: Decimal | None = None
    fee: Decimal = ZERO
    fee_currency: str | None = None
    transfer_id: str | None = None
    order_id: str | None = None


@attrs.frozen(slots=True)
class Archive:
    """Entries a checkpoint stands for, kept where they were stored: their ids in order and
    how to read them (one by position, or all in order). Readers raise if what they read is
    not the entry named."""

    ids: tuple[str, ...]
    read_one: Callable[[int], Entry]
    read_all: Callable[[], list[Entry]]


def _tag_text(value: object) -> str:
    # 100, 100.00 and 1E+2 are the same request: compare decimals by value, not spelling
    if isinstance(value, Decimal) and value.is_finite():
        return format(value.normalize(), "f")
    return str(value)


def _tags(values: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, _tag_text(v)) for k, v in values.items() if v is not None))


def _decimal(field: str, value: object, *, sign: Literal["positive", "nonzero", "any"]) -> Decimal:
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInput(field, value, "must be a finite decimal.Decimal")
    if sign == "positive" and value <= 0:
        raise InvalidInput(field, value, "must be > 0")
    if sign == "nonzero" and value == 0:
        raise InvalidInput(field, value, "must not be 0")
    return value


def _text(field: str, value: object) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidInput(field, value, "must be a non-empty string without outer whitespace")
    return value


def _time(value: object) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInput("now", value, "must be a timezone-aware datetime")
    return value


class Ledger:
    """Double-entry shadow accounts of one node, across venues and currencies.

    Not thread-safe: one owner (the ledger actor) calls it.
    """

    def __init__(self, on_record: Callable[[Entry], None] | None = None) -> None:
        self._on_record = on_record
        self._entries: list[Entry] = []
        self._by_id: dict[str, Entry] = {}
        self._balances: dict[tuple[str, str], Decimal] = {}
        self._reservations: dict[str, Reservation] = {}
        self._frozen: dict[tuple[str, str], str] = {}
        self._archive: Archive | None = None
        self._archived: dict[str, int] = {}

    @classmethod
    def from_entries(
        cls, entries: Iterable[Entry], on_record: Callable[[Entry], None] | None = None
    ) -> Ledger:
        """Rebuild a ledger by re-validating and applying stored entries in order."""
        ledger = cls(on_record)
        for entry in entries:
            ledger.restore(entry)
        return ledger

    @classmethod
    def from_checkpoint(
        cls, state: Mapping[str, Any], archive: Archive,
        on_record: Callable[[Entry], None] | None = None,
    ) -> Ledger:
        """A ledger whose state is ``state`` (from :meth:`checkpoint_state`) and whose entries
        so far are ``archive``'s (``state["entries"]`` names them), read when asked for.

        Checks what can be checked without the entries: every currency sums to zero, each
        reserved account holds exactly what its open reservations have left, ids are unique.
        Raises ValueError (or KeyError, TypeError, ArithmeticError) on anything off.
        """
        ledger = cls(on_record)
        ledger._archived = {entry_id: i for i, entry_id in enumerate(archive.ids)}
        if len(ledger._archived) != len(archive.ids):
            raise ValueError("checkpoint names an entry id twice")
        sums: dict[str, Decimal] = defaultdict(Decimal)
        for account, currency, text in state["balances"]:
            amount = Decimal(text)
            if not amount.is_finite() or currency not in accounts.parse_account(account).currencies:
                raise ValueError(f"checkpoint balance {account} {currency} {text} is invalid")
            ledger._balances[(account, currency)] = amount
            sums[currency] += amount
        if any(sums.values()):
            raise ValueError(f"checkpoint balances do not sum to zero: {dict(sums)}")
        held: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for tid, venue, currency, amount, consumed, released, voided, order_id in \
                state["reservations"]:
            res = Reservation(tid, venue, currency, Decimal(amount), Decimal(consumed),
                              Decimal(released), bool(voided), order_id)
            if res.amount <= 0 or res.consumed < 0 or res.released < 0 or res.remaining < 0 \
                    or (res.voided and res.remaining != 0) or tid in ledger._reservations:
                raise ValueError(f"checkpoint reservation {tid} is inconsistent")
            ledger._reservations[tid] = res
            held[(accounts.reserved(venue, currency), currency)] += res.remaining
        reserved = {key: amount for key, amount in ledger._balances.items()
                    if key[0].endswith(":reserved") and amount != 0}
        if reserved != {key: amount for key, amount in held.items() if amount != 0}:
            raise ValueError("checkpoint reserved balances differ from its reservations")
        for venue, currency, reason in state["frozen"]:
            ledger._frozen[(accounts.validate_venue(venue),
                            accounts.validate_currency(currency))] = str(reason)
        ledger._archive = archive
        return ledger

    def checkpoint_state(self) -> dict[str, Any]:
        """The derived state and entry ids, as JSON, for :meth:`from_checkpoint`."""
        archived = list(self._archive.ids) if self._archive is not None else []
        return {
            "balances": [[a, c, str(v)] for (a, c), v in self._balances.items()],
            "reservations": [[r.transfer_id, r.venue, r.currency, str(r.amount),
                              str(r.consumed), str(r.released), r.voided, r.order_id]
                             for r in self._reservations.values()],
            "frozen": [[v, c, reason] for (v, c), reason in self._frozen.items()],
            "entries": archived + [e.id for e in self._entries],
        }

    # ----------------------------------------------------------------- reads

    def entry_count(self) -> int:
        """How many entries the ledger holds, archived ones included (none are read)."""
        return len(self._entries) + (len(self._archive.ids) if self._archive else 0)

    @property
    def entries(self) -> tuple[Entry, ...]:
        if self._archive is not None:
            archived = self._archive.read_all()
            if [e.id for e in archived] != list(self._archive.ids):
                raise ValueError("archived entries read back differ from the checkpoint's ids")
            for entry in archived:
                self._by_id.setdefault(entry.id, entry)
            self._entries[:0] = archived
            self._archive, self._archived = None, {}
        return tuple(self._entries)

    def entry(self, entry_id: str) -> Entry | None:
        found = self._by_id.get(entry_id)
        if found is None and self._archive is not None and entry_id in self._archived:
            found = self._archive.read_one(self._archived[entry_id])
            if found.id != entry_id:
                raise ValueError(f"archived entry {entry_id} read back as {found.id}")
            self._by_id[entry_id] = found
        return found

    def account_balance(self, account: str, currency: str) -> Decimal:
        return self._balances.get((account, currency), ZERO)

    def account_balances(self) -> dict[tuple[str, str], Decimal]:
        """The incrementally maintained balance per (account, currency), zeros omitted."""
        return {k: v for k, v in self._balances.items() if v != 0}

    def recompute_balances(self) -> dict[tuple[str, str], Decimal]:
        """Balances summed afresh from every posting; equals :meth:`account_balances`."""
        sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for entry in self.entries:
            for p in entry.postings:
                sums[(p.account, p.currency)] += p.amount
        return {k: v for k, v in sums.items() if v != 0}

    def balance(self, venue: str, currency: str) -> Balance:
        return Balance(
            available=self.account_balance(accounts.available(venue, currency), currency),
            reserved=self.account_balance(accounts.reserved(venue, currency), currency),
        )

    def balances(self, venue: str | None = None) -> dict[tuple[str, str], Balance]:
        """Balance per (venue, currency) for every asset ever posted, optionally one venue."""
        keys = set()
        for account, currency in self._balances:
            parsed = accounts.parse_account(account)
            if parsed.kind in ("available", "reserved") and venue in (None, parsed.venue):
                keys.add((parsed.venue, currency))
        return {key: self.balance(*key) for key in sorted(keys)}

    def reservation(self, transfer_id: str) -> Reservation | None:
        return self._reservations.get(transfer_id)

    def reservations(self, *, open_only: bool = False) -> tuple[Reservation, ...]:
        return tuple(r for r in self._reservations.values() if not (open_only and r.voided))

    def frozen(self) -> dict[tuple[str, str], str]:
        """Frozen (venue, currency) pairs with the reason each was frozen."""
        return dict(self._frozen)

    def is_frozen(self, venue: str, currency: str) -> bool:
        return (venue, currency) in self._frozen

    # ------------------------------------------------------------ operations

    def deposit(
        self, entry_id: str, venue: str, currency: str, amount: Decimal, now: datetime,
        *, cause: str = "opening balance",
    ) -> Entry:
        """Credit available funds against ``equity:opening`` (opening balance or deposit)."""
        entry_id = f"open:{_text('entry_id', entry_id)}"
        tags = _tags({"venue": venue, "currency": currency, "amount": amount})
        if (done := self._replayed(entry_id, EntryKind.OPEN, tags)) is not None:
            return done
        _decimal("amount", amount, sign="positive")
        postings = (
            Posting(accounts.available(venue, currency), currency, amount),
            Posting(accounts.opening(venue, currency), currency, -amount),
        )
        return self.record(Entry(entry_id, EntryKind.OPEN, _time(now), cause, postings, tags))

    def reserve(
        self, transfer_id: str, venue: str, currency: str, amount: Decimal, now: datetime,
        *, order_id: str | None = None, cause: str = "reserve",
    ) -> Entry:
        """Hold ``amount`` of available funds for a pending transfer (an order).

        Raises InsufficientAvailable if available is short, CurrencyFrozen if the
        currency is frozen on that venue.
        """
        entry_id = f"reserve:{_text('transfer_id', transfer_id)}"
        tags = _tags({"transfer_id": transfer_id, "venue": venue, "currency": currency,
                      "amount": amount, "order_id": order_id})
        if (done := self._replayed(entry_id, EntryKind.RESERVE, tags)) is not None:
            return done
        _decimal("amount", amount, sign="positive")
        postings = (
            Posting(accounts.available(venue, currency), currency, -amount),
            Posting(accounts.reserved(venue, currency), currency, amount),
        )
        return self.record(Entry(entry_id, EntryKind.RESERVE, _time(now), cause, postings, tags))

    def post(
        self, transfer_id: str, post_id: str, amount: Decimal, destination: str, now: datetime,
        *, cause: str = "post",
    ) -> Entry:
        """Consume ``amount`` of a reservation into ``destination``, once per ``post_id``."""
        entry_id = f"post:{_text('transfer_id', transfer_id)}:{_text('post_id', post_id)}"
        tags = _tags({"transfer_id": transfer_id, "post_id": post_id, "amount": amount,
                      "destination": destination})
        if (done := self._replayed(entry_id, EntryKind.POST, tags)) is not None:
            return done
        _decimal("amount", amount, sign="positive")
        res = self._open_reservation(transfer_id)
        if amount > res.remaining:
            raise Overfill(transfer_id, amount, res.remaining)
        target = accounts.parse_account(destination)
        if res.currency not in target.currencies:
            raise InvalidAccount(destination, f"cannot hold {res.currency}")
        postings = (
            Posting(accounts.reserved(res.venue, res.currency), res.currency, -amount),
            Posting(destination, res.currency, amount),
        )
        return self.record(Entry(entry_id, EntryKind.POST, _time(now), cause, postings, tags))

    def void(self, transfer_id: str, now: datetime, *, cause: str = "void") -> Entry:
        """Release what is left of a reservation to available and close it (once)."""
        entry_id = f"void:{_text('transfer_id', transfer_id)}"
        tags = _tags({"transfer_id": transfer_id})
        if (done := self._replayed(entry_id, EntryKind.VOID, tags)) is not None:
            return done
        res = self._open_reservation(transfer_id)
        postings: tuple[Posting, ...] = ()
        if res.remaining:
            postings = (
                Posting(accounts.reserved(res.venue, res.currency), res.currency, -res.remaining),
                Posting(accounts.available(res.venue, res.currency), res.currency, res.remaining),
            )
        return self.record(Entry(entry_id, EntryKind.VOID, _time(now), cause, postings, tags))

    def fill(self, fill: Fill, now: datetime, *, cause: str = "fill") -> Entry:
        """Book a trade through the market's conversion account, once per trade id.

        Raises Overfill if the trade spends more than its reservation has left.
        """
        base, quote = accounts.validate_symbol(fill.symbol)
        entry_id = f"fill:{fill.venue}:{fill.symbol}:{_text('trade_id', fill.trade_id)}"
        tags = _tags({f.name: getattr(fill, f.name) for f in attrs.fields(Fill)})
        if (done := self._replayed(entry_id, EntryKind.FILL, tags)) is not None:
            return done
        venue = accounts.validate_venue(fill.venue)
        if fill.side not in ("buy", "sell"):
            raise InvalidInput("side", fill.side, "must be 'buy' or 'sell'")
        amount = _decimal("amount", fill.amount, sign="positive")
        price = _decimal("price", fill.price, sign="positive")
        cost = amount * price if fill.cost is None else _decimal("cost", fill.cost, sign="positive")
        fee = _decimal("fee", fill.fee, sign="any")
        if fee and fill.fee_currency is None:
            raise InvalidInput("fee_currency", None, "required when fee is not 0")
        if fill.side == "buy":
            spent, spent_amount, got, got_amount = quote, cost, base, amount
        else:
            spent, spent_amount, got, got_amount = base, amount, quote, cost
        source = accounts.available(venue, spent)
        left = ZERO
        if fill.transfer_id is not None:
            res = self._open_reservation(fill.transfer_id)
            if (res.venue, res.currency) != (venue, spent):
                raise InvalidInput(
                    "transfer_id", fill.transfer_id,
                    f"reservation holds {res.currency} on {res.venue}, "
                    f"trade spends {spent} on {venue}",
                )
            if spent_amount > res.remaining:
                raise Overfill(fill.transfer_id, spent_amount, res.remaining)
            source = accounts.reserved(venue, spent)
            left = res.remaining - spent_amount
        conv = accounts.conversion(venue, fill.symbol)
        postings = [
            Posting(source, spent, -spent_amount),
            Posting(conv, spent, spent_amount),
            Posting(conv, got, -got_amount),
            Posting(accounts.available(venue, got), got, got_amount),
        ]
        if fee:
            fee_cur = accounts.validate_currency(fill.fee_currency)
            from_reserved = min(fee, left) if fee_cur == spent and fee > 0 else ZERO
            if from_reserved:
                postings.append(Posting(accounts.reserved(venue, fee_cur), fee_cur, -from_reserved))
            if fee - from_reserved:
                postings.append(
                    Posting(accounts.available(venue, fee_cur), fee_cur, -(fee - from_reserved))
                )
            postings.append(Posting(accounts.fees(venue, fee_cur), fee_cur, fee))
        return self.record(
            Entry(entry_id, EntryKind.FILL, _time(now), cause, tuple(postings), tags)
        )

    def adjust(
        self, entry_id: str, venue: str, currency: str, delta: Decimal, now: datetime,
        *, reason: str, ledger_total: Decimal, exchange_total: Decimal,
    ) -> Entry:
        """Correct available by ``delta`` against ``equity:adjustments``, with both figures."""
        entry_id = f"adjust:{_text('entry_id', entry_id)}"
        tags = _tags({"venue": venue, "currency": currency, "delta": delta,
                      "ledger_total": ledger_total, "exchange_total": exchange_total})
        if (done := self._replayed(entry_id, EntryKind.ADJUST, tags)) is not None:
            return done
        _decimal("delta", delta, sign="nonzero")
        _decimal("ledger_total", ledger_total, sign="any")
        _decimal("exchange_total", exchange_total, sign="any")
        postings = (
            Posting(accounts.available(venue, currency), currency, delta),
            Posting(accounts.adjustments(venue, currency), currency, -delta),
        )
        cause = f"{_text('reason', reason)}: ledger {ledger_total}, exchange {exchange_total}"
        return self.record(Entry(entry_id, EntryKind.ADJUST, _time(now), cause, postings, tags))

    def freeze(
        self, entry_id: str, venue: str, currency: str, now: datetime, *, reason: str
    ) -> Entry:
        """Refuse new reservations in ``currency`` on ``venue``; releases and fills go on."""
        return self._set_frozen(EntryKind.FREEZE, entry_id, venue, currency, now, reason)

    def unfreeze(
        self, entry_id: str, venue: str, currency: str, now: datetime, *, reason: str
    ) -> Entry:
        """Operator's release of a freeze."""
        return self._set_frozen(EntryKind.UNFREEZE, entry_id, venue, currency, now, reason)

    def record(self, entry: Entry) -> Entry:
        """Validate and apply one entry; the single door every change goes through.

        A known id with the same request returns the stored entry unchanged.
        """
        if (done := self._replayed(entry.id, entry.kind, entry.tags)) is not None:
            return done
        self._validate(entry)
        if self._on_record is not None:
            self._on_record(entry)
        self._apply(entry)
        return entry

    def set_recorder(self, on_record: Callable[[Entry], None] | None) -> None:
        """Route new entries through ``on_record`` (the durable store) from now on."""
        self._on_record = on_record

    def restore(self, entry: Entry) -> Entry:
        """Re-validate and apply an entry read back from the store (``on_record`` not called)."""
        if (done := self._replayed(entry.id, entry.kind, entry.tags)) is not None:
            return done
        self._validate(entry)
        self._apply(entry)
        return entry

    # -------------------------------------------------------------- internals

    def _set_frozen(
        self, kind: EntryKind, entry_id: str, venue: str, currency: str, now: datetime,
        reason: str,
    ) -> Entry:
        entry_id = f"{kind.value}:{_text('entry_id', entry_id)}"
        tags = _tags({"venue": venue, "currency": currency})
        if (done := self._replayed(entry_id, kind, tags)) is not None:
            return done
        accounts.validate_venue(venue)
        accounts.validate_currency(currency)
        return self.record(Entry(entry_id, kind, _time(now), _text("reason", reason), (), tags))

    def _replayed(
        self, entry_id: str, kind: EntryKind, tags: tuple[tuple[str, str], ...]
    ) -> Entry | None:
        existing = self.entry(entry_id)
        if existing is None:
            return None
        if existing.request != (kind.value, tags):
            raise IdempotencyConflict(entry_id, repr(existing.request), repr((kind.value, tags)))
        return existing

    def _open_reservation(self, transfer_id: str) -> Reservation:
        res = self._reservations.get(transfer_id)
        if res is None:
            raise UnknownReservation(transfer_id)
        if res.voided:
            raise ReservationClosed(transfer_id)
        return res

    def _validate(self, entry: Entry) -> None:
        """Check an entry against every ledger invariant without changing anything."""
        _text("entry id", entry.id)
        _time(entry.time)
        sums: dict[str, Decimal] = {}
        deltas: dict[tuple[str, str], Decimal] = {}
        for p in entry.postings:
            parsed = accounts.parse_account(p.account)
            if p.currency not in parsed.currencies:
                raise InvalidAccount(p.account, f"cannot hold {p.currency}")
            _decimal(f"amount of {p.account}", p.amount, sign="nonzero")
            sums[p.currency] = sums.get(p.currency, ZERO) + p.amount
            key = (p.account, p.currency)
            deltas[key] = deltas.get(key, ZERO) + p.amount
        residuals = {cur: amt for cur, amt in sums.items() if amt}
        if residuals:
            raise UnbalancedEntry(entry.id, residuals)
        for (account, currency), delta in deltas.items():
            after = self.account_balance(account, currency) + delta
            if after < 0 and account.endswith(":available"):
                venue = accounts.parse_account(account).venue
                raise InsufficientAvailable(
                    venue, currency, -delta, self.account_balance(account, currency)
                )
        self._validate_reservation_effect(entry, deltas)

    def _validate_reservation_effect(
        self, entry: Entry, deltas: Mapping[tuple[str, str], Decimal]
    ) -> None:
        transfer_id = entry.tag("transfer_id")
        reserved_moves = {k: v for k, v in deltas.items() if k[0].endswith(":reserved")}
        if entry.kind is EntryKind.RESERVE:
            venue, currency = entry.tag("venue"), entry.tag("currency")
            if transfer_id is None or venue is None or currency is None:
                raise InvalidInput("tags", entry.tags, "reserve needs transfer_id, venue, currency")
            if transfer_id in self._reservations:
                raise IdempotencyConflict(transfer_id, "an existing reservation", "a new one")
            if (venue, currency) in self._frozen:
                raise CurrencyFrozen(venue, currency, self._frozen[(venue, currency)])
            if any(v <= 0 for v in reserved_moves.values()) or list(reserved_moves) != [
                (accounts.reserved(venue, currency), currency)
            ]:
                raise InvalidInput("postings", entry.postings, "reserve must credit one reserved")
            return
        if transfer_id is None:
            if reserved_moves:
                raise InvalidInput("postings", entry.postings, "reserved moves need a transfer_id")
            return
        res = self._open_reservation(transfer_id)
        own = (accounts.reserved(res.venue, res.currency), res.currency)
        if set(reserved_moves) - {own}:
            raise InvalidInput("postings", entry.postings, f"touch reserved funds beyond {own}")
        consumed = -reserved_moves.get(own, ZERO)
        if consumed < 0:
            raise InvalidInput("postings", entry.postings, "cannot add to a reservation")
        if consumed > res.remaining:
            raise Overfill(transfer_id, consumed, res.remaining)
        if entry.kind is EntryKind.VOID and consumed != res.remaining:
            raise InvalidInput("postings", entry.postings, "a void releases all that remains")

    def _apply(self, entry: Entry) -> None:
        self._entries.append(entry)
        self._by_id[entry.id] = entry
        for p in entry.postings:
            key = (p.account, p.currency)
            self._balances[key] = self._balances.get(key, ZERO) + p.amount
        transfer_id = entry.tag("transfer_id")
        venue, currency = entry.tag("venue"), entry.tag("currency")
        if entry.kind is EntryKind.RESERVE:
            assert transfer_id is not None and venue is not None and currency is not None
            amount = sum((p.amount for p in entry.postings if p.amount > 0), ZERO)
            self._reservations[transfer_id] = Reservation(
                transfer_id, venue, currency, amount, order_id=entry.tag("order_id")
            )
        elif transfer_id is not None:
            res = self._reservations[transfer_id]
            moved = sum(
                (-p.amount for p in entry.postings
                 if p.account == accounts.reserved(res.venue, res.currency)),
                ZERO,
            )
            # Built directly: attrs.evolve costs several times more on a replay's hot path.
            if entry.kind is EntryKind.VOID:
                res = Reservation(res.transfer_id, res.venue, res.currency, res.amount,
                                  res.consumed, moved, True, res.order_id)
            else:
                res = Reservation(res.transfer_id, res.venue, res.currency, res.amount,
                                  res.consumed + moved, res.released, res.voided, res.order_id)
            self._reservations[transfer_id] = res
        elif entry.kind is EntryKind.FREEZE:
            self._frozen[(str(venue), str(currency))] = entry.cause
        elif entry.kind is EntryKind.UNFREEZE:
            self._frozen.pop((str(venue), str(currency)), None)
