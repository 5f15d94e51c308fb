"""The ``trading`` subtree (rest_for_one): ledger, then transactions, then reconciler.

rest_for_one because each depends on the ones started before it: a restarted ledger restarts
the coordinator (which re-derives what its orders still need from the journal) and the
reconciler (which runs a start-up reconciliation again before new orders are accepted).

Names: ``trading/ledger``, ``trading/transactions``, ``trading/reconciler``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import pykka

from actors.api import gatekeeper_name
from actors.protocol import Call, ReplySlot
from ironclad.config import Config
from messages.exchange import ExchangeReply, ExchangeRequest, Overloaded
from supervisors import ActorUnavailable, ChildSpec, NameNotFound, Strategy, SupervisorSpec, names
from trading import accounts
from trading.client_ids import VENUE_RULES, VenueIdRule
from trading.inflight import BackoffPolicy
from trading.protocol import ProtocolConfig
from trading.reconcile import ReconciliationPolicy, Tolerance

__all__ = [
    "LEDGER",
    "RECONCILER",
    "TRANSACTIONS",
    "CallAnswered",
    "CallOverdue",
    "TradingSettings",
    "call_for_self",
    "submit_notifying",
    "trading_spec",
]

#: Stable names of the subtree's actors.
LEDGER = "trading/ledger"
TRANSACTIONS = "trading/transactions"
RECONCILER = "trading/reconciler"

#: Exchanges whose client-id lookup sees only open orders (closed ones need the history).
_OPEN_ONLY_LOOKUP = frozenset({"nobitex"})

SupervisorFactory = Callable[[str, Strategy, Sequence[ChildSpec | SupervisorSpec]],
                             SupervisorSpec]


@attrs.frozen(kw_only=True)
class TradingSettings:
    """Everything the three trading actors need, derived once from the node config."""

    node_id: str
    venue: str
    exchange: str
    data_dir: Path
    protocol: ProtocolConfig
    id_rule: VenueIdRule
    call_timeout: float
    inflight_tick: float
    inflight_policy: BackoffPolicy
    inflight_cap: int
    reconcile_policy: ReconciliationPolicy
    reconcile_interval: float
    reconcile_retry: float
    trades_lookback: float
    ask_timeout: float = 10.0
    #: Tell the alert manager each currency's verdict (the node runs the alerts part).
    alerts: bool = False

    @property
    def gatekeeper(self) -> str:
        return gatekeeper_name(self.venue)

    @property
    def ledger_dir(self) -> Path:
        return self.data_dir / "ledger"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def ledger_venue(self) -> str:
        """The venue's segment in ledger account paths (lowercase)."""
        return accounts.validate_venue(self.venue.lower())

    @classmethod
    def from_config(cls, config: Config) -> TradingSettings:
        t = config.trading
        exchange = config.venue.exchange
        rule = VENUE_RULES.get(exchange) or VenueIdRule(exchange, 32, r"[A-Za-z0-9]{1,32}")
        tolerance = Tolerance(absolute=Decimal(t.tolerance_absolute) or None,
                              relative=Decimal(t.tolerance_relative) or None,
                              freeze_on_discrepancy=t.freeze_on_discrepancy)
        return cls(
            node_id=config.node.name,
            venue=config.venue.name,
            exchange=exchange,
            data_dir=Path(config.node.data_dir),
            protocol=ProtocolConfig(absence_grace=timedelta(seconds=t.absence_grace),
                                    max_submit_attempts=t.max_submit_attempts,
                                    lookup_sees_closed_orders=exchange not in _OPEN_ONLY_LOOKUP),
            id_rule=rule,
            call_timeout=t.call_timeout,
            inflight_tick=t.inflight_tick,
            inflight_policy=BackoffPolicy(initial=timedelta(seconds=t.inflight_initial),
                                          factor=t.inflight_factor,
                                          maximum=timedelta(seconds=t.inflight_max)),
            inflight_cap=t.inflight_cap,
            reconcile_policy=ReconciliationPolicy(default=tolerance),
            reconcile_interval=t.reconcile_interval,
            reconcile_retry=t.reconcile_retry,
            trades_lookback=t.trades_lookback,
            alerts=config.alerts.enabled,
        )


class _NotifyingFuture(pykka.ThreadingFuture[ExchangeReply]):
    """A reply future that also hands its value to a callback (pykka futures have no
    done-callbacks); the callback runs on the answering thread and must only tell an actor."""

    def __init__(self, on_reply: Callable[[ExchangeReply], None]) -> None:
        super().__init__()
        self._on_reply = on_reply

    def set(self, value: ExchangeReply | None = None) -> None:
        super().set(value)
        assert value is not None
        self._on_reply(value)


def submit_notifying(request: ExchangeRequest, on_reply: Callable[[ExchangeReply], None],
                     *, resolve_timeout: float = 0.5) -> ReplySlot:
    """Send ``request`` to its gatekeeper without waiting for the exchange: its one reply is
    passed to ``on_reply`` (typically ``actor_ref.tell``) on whichever thread settles it.

    Waits at most ``resolve_timeout`` for a restarting gatekeeper; a venue without one is
    answered ``Overloaded`` at once (nothing was sent). The returned slot lets the caller
    settle the call itself if no answer comes (``slot.answer(...)``: the first answer wins).
    """
    slot = ReplySlot(future=_NotifyingFuture(on_reply))
    wait = min(resolve_timeout, max(0.0, request.remaining(time.monotonic())))
    try:
        names.tell(gatekeeper_name(request.venue), Call(request, slot), timeout=wait)
    except (ActorUnavailable, NameNotFound) as error:
        slot.answer(Overloaded(request_id=request.id, reason=f"gatekeeper unavailable: {error}"))
    return slot


@attrs.frozen(slots=True)
class CallAnswered:
    """The one reply to a call an actor made with :func:`call_for_self`, as a message to it."""

    request_id: str
    reply: Any


@attrs.frozen(slots=True)
class CallOverdue:
    """Sent to the caller when a call made with :func:`call_for_self` should have been answered:
    the caller may then settle it itself (``slot.answer(...)``; the first answer wins)."""

    request_id: str


def call_for_self(actor: pykka.Actor, send_after: Callable[[float, Any], Any],
                  request: ExchangeRequest, *, overdue_after: float) -> ReplySlot:
    """Send ``request`` without blocking ``actor``: its reply comes back to it as
    :class:`CallAnswered`, and a :class:`CallOverdue` follows after ``overdue_after`` seconds.

    A reply reaching an actor that has since been restarted is dropped: state that must survive
    lives in the journal and ledger, and the successor's lookups re-derive what it said."""
    ref = actor.actor_ref
    request_id = request.id

    def deliver(reply: ExchangeReply) -> None:
        try:
            ref.tell(CallAnswered(request_id, reply))
        except pykka.ActorDeadError:
            pass

    slot = submit_notifying(request, deliver)
    send_after(overdue_after, CallOverdue(request_id))
    return slot


def trading_spec(settings: TradingSettings, supervisor: SupervisorFactory) -> SupervisorSpec:
    """The ``trading`` supervisor (rest_for_one) for ``settings``; ``supervisor(id, strategy,
    children)`` gives it the node's restart intensity and backoff."""
    from actors.ledger import LedgerActor
    from actors.reconciler import Reconciler
    from actors.transactions import TransactionCoordinator

    return supervisor("trading", Strategy.REST_FOR_ONE, [
        ChildSpec(id="ledger", start=functools.partial(LedgerActor.start, settings)),
        ChildSpec(id="transactions",
                  start=functools.partial(TransactionCoordinator.start, settings),
                  start_timeout=30.0),
        ChildSpec(id="reconciler", start=functools.partial(Reconciler.start, settings)),
    ])
