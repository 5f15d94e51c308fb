"""The event-log conversation: ask the node's event log for what it has recorded."""

from __future__ import annotations

import attrs

__all__ = ["RecentEvents"]


def _positive_int(_instance: object, attribute: attrs.Attribute, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name}: expected an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class RecentEvents:
    """Ask: the last ``limit`` supervision events recorded, oldest first (a tuple)."""

    limit: int = attrs.field(default=100, validator=_positive_int)
