"""Notification channels configured by URL: apprise for the world, plus log and JSON-lines file.

``json://host/path`` (webhook), ``slack://``, ``tgram://``, ``discord://``, ``mailto://`` and every
other scheme apprise knows go through apprise; ``log://`` writes to the node's log (loguru);
``jsonl:///path/file.jsonl`` appends one JSON notification per line, fsynced. A URL may be
prefixed by a name (``ops=slack://...``); otherwise the channel is named after its scheme.
A channel's ``send`` blocks on its own I/O only and raises :class:`DeliveryError` with a reason.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import apprise
import attrs
from loguru import logger

from gateway.breaker import BreakerConfig
from messages.alerts import AlertLevel, Notification, NotifyReason
from messages.codec import to_json

__all__ = [
    "ChannelSpec",
    "Channel",
    "DeliveryError",
    "InvalidChannelUrl",
    "parse_channel_urls",
    "open_channel",
    "render",
    "DeliveryPolicy",
]

_NAMED = re.compile(r"([A-Za-z0-9_-]{1,32})=(.+)\Z")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


class InvalidChannelUrl(ValueError):
    """Raised when a channel URL is malformed or not understood (by us or by apprise)."""


class DeliveryError(Exception):
    """Raised when a channel did not accept a notification; ``str()`` is the reason."""


@attrs.frozen
class ChannelSpec:
    """One channel: its name (``alerts/channel:<name>``) and URL (may hold a secret: not
    shown in repr or logs)."""

    name: str
    url: str = attrs.field(repr=False)

    @property
    def scheme(self) -> str:
        match = _SCHEME.match(self.url)
        assert match is not None
        return match.group(1).lower()


def _positive(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{attribute.name}: expected a number > 0, got {value!r}")


def _non_negative(_instance: object, attribute: attrs.Attribute, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"{attribute.name}: expected a number >= 0, got {value!r}")


@attrs.frozen(kw_only=True)
class DeliveryPolicy:
    """How every channel delivers: throttle, retries with exponential backoff, its breaker."""

    #: At least this many seconds between two messages on one channel (queued ones are merged).
    throttle: float = attrs.field(default=5.0, validator=_non_negative)
    #: Send attempts per notification before it is reported failed.
    retry_attempts: int = attrs.field(default=5, validator=_positive)
    retry_initial: float = attrs.field(default=2.0, validator=_non_negative)
    retry_factor: float = attrs.field(default=2.0, validator=_positive)
    retry_max: float = attrs.field(default=60.0, validator=_non_negative)
    #: Notifications merged into one message at most.
    max_batch: int = attrs.field(default=20, validator=_positive)
    breaker: BreakerConfig = attrs.field(factory=lambda: BreakerConfig(
        window_size=4, minimum_calls=2, failure_rate_threshold=0.5, half_open_probes=1,
        open_base=30.0, open_cap=300.0, jitter=0.1,
    ))

    def retry_delay(self, failures: int) -> float:
        """Delay before the next attempt after ``failures`` failed ones (>= 1)."""
        return min(self.retry_max, self.retry_initial * self.retry_factor ** (failures - 1))


def parse_channel_urls(urls: Sequence[str]) -> tuple[ChannelSpec, ...]:
    """Channel specs for ``urls`` (names unique: ``json``, ``json-2``...); raises
    :class:`InvalidChannelUrl` naming the bad entry (the URL itself is not echoed)."""
    specs: list[ChannelSpec] = []
    taken: set[str] = set()
    for index, entry in enumerate(urls):
        named = _NAMED.match(entry)
        name, url = (named.group(1), named.group(2)) if named else (None, entry)
        scheme = _SCHEME.match(url)
        if scheme is None:
            raise InvalidChannelUrl(f"alert channel #{index + 1}: expected scheme://...")
        if name is None:
            base = scheme.group(1).lower()
            name, n = base, 1
            while name in taken:
                n += 1
                name = f"{base}-{n}"
        elif name in taken:
            raise InvalidChannelUrl(f"alert channel #{index + 1}: name {name!r} used twice")
        taken.add(name)
        spec = ChannelSpec(name, url)
        _check(spec, index)
        specs.append(spec)
    return tuple(specs)


def _check(spec: ChannelSpec, index: int) -> None:
    if spec.scheme == "log":
        return
    if spec.scheme == "jsonl":
        if not spec.url[len("jsonl://"):].startswith("/"):
            raise InvalidChannelUrl(f"alert channel #{index + 1}: jsonl needs an absolute path")
        return
    if not apprise.Apprise().add(spec.url):
        raise InvalidChannelUrl(
            f"alert channel #{index + 1} ({spec.scheme}://): not a URL apprise understands"
        )


class Channel(Protocol):
    """Something that delivers notifications; blocking, bounded by its own timeouts."""

    def send(self, notifications: Sequence[Notification]) -> None: ...


def render(notifications: Sequence[Notification]) -> tuple[str, str]:
    """Title and body of one message carrying ``notifications`` (several when throttled)."""
    if len(notifications) == 1:
        return notifications[0].title, notifications[0].body
    title = f"{len(notifications)} alert notifications"
    body = "\n\n".join(f"{n.title}\n{n.body}" for n in notifications)
    return title, body


def _top_level(notifications: Sequence[Notification]) -> tuple[AlertLevel, bool]:
    items = [i for n in notifications for i in n.items]
    top = max((i.level for i in items), key=lambda level: level.rank)
    return top, all(i.reason is NotifyReason.RESOLVED for i in items)


class _AppriseChannel:
    def __init__(self, spec: ChannelSpec) -> None:
        self._spec = spec
        self._apprise = apprise.Apprise()
        if not self._apprise.add(spec.url):
            raise InvalidChannelUrl(f"channel {spec.name}: not a URL apprise understands")

    def send(self, notifications: Sequence[Notification]) -> None:
        title, body = render(notifications)
        level, all_resolved = _top_level(notifications)
        if all_resolved:
            kind = apprise.NotifyType.SUCCESS
        elif level.rank >= AlertLevel.ERROR.rank:
            kind = apprise.NotifyType.FAILURE
        elif level is AlertLevel.WARNING:
            kind = apprise.NotifyType.WARNING
        else:
            kind = apprise.NotifyType.INFO
        with apprise.LogCapture(level=logging.WARNING) as captured:
            ok = self._apprise.notify(body=body, title=title, notify_type=kind,
                                      body_format=apprise.NotifyFormat.TEXT)
        if not ok:
            lines = [line for line in captured.getvalue().splitlines() if line.strip()]
            reason = lines[-1].split(" - ", 2)[-1] if lines else "apprise reported a failure"
            raise DeliveryError(f"{self._spec.scheme}:// refused: {reason}")


class _LogChannel:
    def __init__(self, spec: ChannelSpec) -> None:
        self._name = spec.name

    def send(self, notifications: Sequence[Notification]) -> None:
        title, body = render(notifications)
        level, all_resolved = _top_level(notifications)
        log_level = "INFO" if all_resolved or level is AlertLevel.INFO else level.value.upper()
        logger.bind(context="alert", channel=self._name).log(log_level, "{}\n{}", title, body)


class _JsonLinesChannel:
    def __init__(self, spec: ChannelSpec) -> None:
        self._path = Path(spec.url[len("jsonl://"):])

    def send(self, notifications: Sequence[Notification]) -> None:
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._path, "a", encoding="utf-8") as file:
                for notification in notifications:
                    file.write(to_json(notification) + "\n")
                file.flush()
                os.fsync(file.fileno())
        except OSError as error:
            raise DeliveryError(f"cannot append to {self._path}: {error}") from None


def open_channel(spec: ChannelSpec) -> Channel:
    """The channel object for ``spec``."""
    if spec.scheme == "log":
        return _LogChannel(spec)
    if spec.scheme == "jsonl":
        return _JsonLinesChannel(spec)
    return _AppriseChannel(spec)
