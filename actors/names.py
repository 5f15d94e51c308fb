"""The stable names of one venue subtree's actors (DESIGN §1: addresses, not refs)."""

from __future__ import annotations

from typing import Any

import attrs
import pykka

from supervisors import ActorUnavailable, NameNotFound, names

__all__ = ["GatewayNames", "tell_if_up"]


@attrs.frozen(slots=True)
class GatewayNames:
    """Names under `venue:<venue>`; resolved at send time so restarts never strand a sender.
    Built once per actor, so the names every exchange call uses are plain attributes."""

    venue: str
    subtree: str = attrs.field(init=False, eq=False, repr=False)
    gatekeeper: str = attrs.field(init=False, eq=False, repr=False)
    rate_limiter: str = attrs.field(init=False, eq=False, repr=False)
    pool: str = attrs.field(init=False, eq=False, repr=False)
    dispatcher: str = attrs.field(init=False, eq=False, repr=False)
    embedded_venue: str = attrs.field(init=False, eq=False, repr=False)

    @subtree.default
    def _subtree(self) -> str:
        return f"venue:{self.venue}"

    @gatekeeper.default
    def _gatekeeper(self) -> str:
        return f"{self.subtree}/gatekeeper"

    @rate_limiter.default
    def _rate_limiter(self) -> str:
        return f"{self.subtree}/rate-limiter"

    @pool.default
    def _pool(self) -> str:
        return f"{self.subtree}/pool"

    @dispatcher.default
    def _dispatcher(self) -> str:
        return f"{self.pool}/dispatcher"

    @embedded_venue.default
    def _embedded_venue(self) -> str:
        return f"{self.subtree}/embedded-venue"

    def worker(self, index: int) -> str:
        return f"{self.pool}/worker-{index}"


def tell_if_up(name: str, message: Any) -> bool:
    """Send `message` to `name` now if its actor is running; False (nothing sent) if it is
    down or restarting. For reports whose loss a restarted receiver recovers from by itself
    (a new gatekeeper has fresh breakers, a new dispatcher asks the workers to announce), so
    a sender never blocks on a restarting peer."""
    try:
        names.resolve(name, 0.0).tell(message)
    except (ActorUnavailable, NameNotFound, pykka.ActorDeadError):
        return False
    return True
