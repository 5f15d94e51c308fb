"""The stable names of one venue subtree's actors (DESIGN §1: addresses, not refs)."""

from __future__ import annotations

from typing import Any

import attrs
import pykka

from supervisors import ActorUnavailable, NameNotFound, names

__all__ = ["GatewayNames", "tell_if_up"]


@attrs.frozen(slots=True)
class GatewayNames:
    """Names under `venue:<venue>`; resolved at send time so restarts never strand a sender."""

    venue: str

    @property
    def subtree(self) -> str:
        return f"venue:{self.venue}"

    @property
    def gatekeeper(self) -> str:
        return f"{self.subtree}/gatekeeper"

    @property
    def rate_limiter(self) -> str:
        return f"{self.subtree}/rate-limiter"

    @property
    def pool(self) -> str:
        return f"{self.subtree}/pool"

    @property
    def dispatcher(self) -> str:
        return f"{self.pool}/dispatcher"

    @property
    def embedded_venue(self) -> str:
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
