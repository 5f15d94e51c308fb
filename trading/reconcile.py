"""Balance reconciliation: the ledger's view against the venue's, per currency.

:func:`reconcile` is pure: it reads a ledger and the venue's balances and returns a
report; :func:`apply_reconciliation` records what the report decided (adjusting
entries, freezes). Totals are compared; a difference within the currency's tolerance
becomes an adjusting entry to ``equity:adjustments:<venue>:<CUR>`` carrying both
figures; beyond it the currency is a discrepancy (an alert) and, if its policy says
so, is frozen: no new reservations until an operator unfreezes it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

import attrs

from trading import accounts
from trading.errors import InvalidInput
from trading.ledger import Balance, Entry, Ledger

__all__ = [
    "CurrencyReconciliation",
    "ExchangeBalance",
    "Outcome",
    "ReconciliationPolicy",
    "ReconciliationReport",
    "Tolerance",
    "apply_reconciliation",
    "reconcile",
]

ZERO = Decimal(0)


def _optional_decimal(field: str, value: Decimal | None) -> None:
    if value is not None and (not isinstance(value, Decimal) or not value.is_finite()
                              or value < 0):
        raise InvalidInput(field, value, "must be a finite, non-negative Decimal or None")


@attrs.frozen(slots=True)
class Tolerance:
    """How far a currency's totals may differ and still be adjusted rather than alerted.

    A difference is tolerated if within ``absolute`` or within ``relative`` times the
    larger of the two totals; with neither set only an exact match passes.
    """

    absolute: Decimal | None = attrs.field(default=None)
    relative: Decimal | None = attrs.field(default=None)
    freeze_on_discrepancy: bool = False

    def __attrs_post_init__(self) -> None:
        _optional_decimal("absolute", self.absolute)
        _optional_decimal("relative", self.relative)

    def allows(self, ledger_total: Decimal, exchange_total: Decimal) -> bool:
        return abs(exchange_total - ledger_total) <= self.limit(ledger_total, exchange_total)

    def limit(self, ledger_total: Decimal, exchange_total: Decimal) -> Decimal:
        """The largest difference tolerated between these two totals (0: only a match)."""
        scale = max(abs(ledger_total), abs(exchange_total))
        return max(self.absolute or ZERO, (self.relative or ZERO) * scale)


@attrs.frozen(slots=True)
class ReconciliationPolicy:
    """Tolerance per currency, ``default`` for the rest."""

    default: Tolerance = Tolerance()
    per_currency: Mapping[str, Tolerance] = attrs.field(factory=dict)

    def for_currency(self, currency: str) -> Tolerance:
        return self.per_currency.get(currency, self.default)


@attrs.frozen(slots=True)
class ExchangeBalance:
    """The venue's balance of one currency: ``total == free + locked``."""

    free: Decimal
    locked: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.locked

    @classmethod
    def from_mapping(cls, currency: str, raw: Mapping[str, object]) -> ExchangeBalance:
        """From ``{"free", "locked" | "used", "total"}``: any two, or ``total`` alone (nothing
        locked); Decimal, str or int only.

        Floats are refused: convert ccxt's floats with ``Decimal(str(x))`` at the edge.
        """
        values: dict[str, Decimal] = {}
        for key in ("free", "locked", "used", "total"):
            value = raw.get(key)
            if value is None:
                continue
            if not isinstance(value, (Decimal, str, int)) or isinstance(value, bool):
                raise InvalidInput(f"{currency}.{key}", value, "must be Decimal, str or int "
                                   "(floats are not money)")
            try:
                values[key] = value if isinstance(value, Decimal) else Decimal(value)
            except ArithmeticError:
                raise InvalidInput(f"{currency}.{key}", value, "not a decimal number") from None
            if not values[key].is_finite():
                raise InvalidInput(f"{currency}.{key}", value, "must be finite")
        locked = values.get("locked", values.get("used"))
        free, total = values.get("free"), values.get("total")
        if free is not None and locked is not None:
            result = cls(free, locked)
            if total is not None and total != result.total:
                raise InvalidInput(f"{currency}.total", total, "is not free + locked")
            return result
        if total is not None and free is not None:
            return cls(free, total - free)
        if total is not None and locked is not None:
            return cls(total - locked, locked)
        if total is not None:
            return cls(total, ZERO)
        raise InvalidInput(currency, dict(raw), "needs two of free, locked/used, total")


class Outcome(enum.StrEnum):
    MATCH = "match"
    ADJUST = "adjust"
    DISCREPANCY = "discrepancy"


@attrs.frozen(slots=True)
class CurrencyReconciliation:
    """The verdict for one currency; ``delta`` is exchange total minus ledger total.

    ``reserved_mismatch`` flags locked funds that differ from the ledger's reservations
    (an order-state difference, reported but never adjusted here).
    """

    venue: str
    currency: str
    outcome: Outcome
    ledger: Balance
    exchange: ExchangeBalance
    delta: Decimal
    freeze: bool
    reserved_mismatch: bool
    reason: str


@attrs.frozen(slots=True)
class ReconciliationReport:
    """One reconciliation run of one venue."""

    run_id: str
    venue: str
    time: datetime
    results: tuple[CurrencyReconciliation, ...]

    @property
    def discrepancies(self) -> tuple[CurrencyReconciliation, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.DISCREPANCY)

    @property
    def adjustments(self) -> tuple[CurrencyReconciliation, ...]:
        return tuple(r for r in self.results if r.outcome is Outcome.ADJUST)


def reconcile(
    ledger: Ledger,
    venue: str,
    exchange: Mapping[str, Mapping[str, object] | ExchangeBalance],
    policy: ReconciliationPolicy,
    now: datetime,
    *,
    run_id: str,
) -> ReconciliationReport:
    """Compare every currency known to either side; change nothing.

    A currency missing on one side counts as zero there.
    """
    accounts.validate_venue(venue)
    theirs = {
        accounts.validate_currency(cur): raw if isinstance(raw, ExchangeBalance)
        else ExchangeBalance.from_mapping(cur, raw)
        for cur, raw in exchange.items()
    }
    ours = {cur: bal for (_, cur), bal in ledger.balances(venue).items()}
    results = []
    for currency in sorted(set(theirs) | set(ours)):
        mine = ours.get(currency, Balance(ZERO, ZERO))
        venue_bal = theirs.get(currency, ExchangeBalance(ZERO, ZERO))
        delta = venue_bal.total - mine.total
        tolerance = policy.for_currency(currency)
        reserved_mismatch = venue_bal.locked != mine.reserved
        if delta == 0:
            outcome, reason = Outcome.MATCH, "totals equal"
        elif not tolerance.allows(mine.total, venue_bal.total):
            outcome, reason = Outcome.DISCREPANCY, f"difference {delta} beyond tolerance"
        elif mine.available + delta < 0:
            outcome = Outcome.DISCREPANCY
            reason = f"difference {delta} within tolerance but exceeds available {mine.available}"
        else:
            outcome, reason = Outcome.ADJUST, f"difference {delta} within tolerance"
        if reserved_mismatch:
            reason += f"; venue locked {venue_bal.locked}, ledger reserved {mine.reserved}"
        results.append(CurrencyReconciliation(
            venue=venue, currency=currency, outcome=outcome, ledger=mine, exchange=venue_bal,
            delta=delta,
            freeze=outcome is Outcome.DISCREPANCY and tolerance.freeze_on_discrepancy,
            reserved_mismatch=reserved_mismatch, reason=reason,
        ))
    return ReconciliationReport(run_id=run_id, venue=venue, time=now, results=tuple(results))


def apply_reconciliation(
    ledger: Ledger, report: ReconciliationReport, now: datetime
) -> tuple[Entry, ...]:
    """Record the report's adjusting entries and freezes; idempotent per run id."""
    entries = []
    for result in report.results:
        entry_id = f"{report.run_id}:{result.venue}:{result.currency}"
        if result.outcome is Outcome.ADJUST:
            entries.append(ledger.adjust(
                entry_id, result.venue, result.currency, result.delta, now,
                reason=f"reconciliation {report.run_id}",
                ledger_total=result.ledger.total, exchange_total=result.exchange.total,
            ))
        elif result.freeze:
            entries.append(ledger.freeze(
                entry_id, result.venue, result.currency, now,
                reason=f"reconciliation {report.run_id}: {result.reason}",
            ))
    return tuple(entries)
