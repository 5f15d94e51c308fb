"""The stable names of one venue subtree's actors (DESIGN §1: addresses, not refs)."""

from __future__ import annotations

import attrs

__all__ = ["GatewayNames"]


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
