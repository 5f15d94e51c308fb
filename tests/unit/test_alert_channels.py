"""Channel URLs, naming and rendering; the log and JSON-lines channels; the [alerts] config
and ``--alert-url``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loguru import logger

from alerts.channels import (
    DeliveryError,
    DeliveryPolicy,
    InvalidChannelUrl,
    open_channel,
    parse_channel_urls,
    render,
)
from ironclad.cli import _with_alert_urls, build_parser, main
from ironclad.config import Config, ConfigError, load_config
from messages.alerts import AlertLevel, Notification, NotificationItem, NotifyReason
from messages.base import FrozenMap

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # apprise: imghdr

LABELS = FrozenMap({"rule": "breaker-open", "venue": "sim"})


def notification(nid: str, reason: NotifyReason = NotifyReason.NEW) -> Notification:
    item = NotificationItem("a1", "breaker-open", AlertLevel.ERROR, LABELS, "breaker is open",
                            reason, 1.0, None)
    return Notification(nid, LABELS, 2.0, (item,))


def test_urls_become_named_channels() -> None:
    specs = parse_channel_urls(["log://", "json://127.0.0.1:9/a", "json://127.0.0.1:9/b",
                                "ops=slack://T000/B000/XXXX", "jsonl:///tmp/x.jsonl"])
    assert [s.name for s in specs] == ["log", "json", "json-2", "ops", "jsonl"]
    assert "slack" not in repr(specs[3])  # the URL (a secret) stays out of reprs


@pytest.mark.parametrize("url", ["nonsense", "nosuchscheme://x", "jsonl://relative/path"])
def test_bad_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidChannelUrl):
        parse_channel_urls([url])


def test_duplicate_names_are_refused() -> None:
    with pytest.raises(InvalidChannelUrl, match="twice"):
        parse_channel_urls(["a=log://", "a=json://127.0.0.1/x"])


def test_render_merges_throttled_notifications() -> None:
    title, body = render([notification("n1")])
    assert title == "[ERROR] 1 firing (rule=breaker-open, venue=sim)"
    assert body == "new: [error] breaker is open"
    title, body = render([notification("n1"), notification("n2", NotifyReason.RESOLVED)])
    assert title == "2 alert notifications" and "1 resolved" in body


def test_jsonl_channel_appends_one_line_per_notification(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.jsonl"
    channel = open_channel(parse_channel_urls([f"jsonl://{path}"])[0])
    channel.send([notification("n1"), notification("n2")])
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["n1", "n2"]


def test_jsonl_channel_reports_an_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    channel = open_channel(parse_channel_urls([f"jsonl://{blocker}/alerts.jsonl"])[0])
    with pytest.raises(DeliveryError, match="cannot append"):
        channel.send([notification("n1")])


def test_log_channel_writes_to_loguru() -> None:
    seen: list[str] = []
    handler = logger.add(lambda m: seen.append(m.record["message"]), level="INFO")
    try:
        open_channel(parse_channel_urls(["log://"])[0]).send([notification("n1")])
    finally:
        logger.remove(handler)
    assert any("breaker is open" in text for text in seen)


def test_retry_delay_grows_and_is_capped() -> None:
    policy = DeliveryPolicy(retry_initial=1, retry_factor=2, retry_max=5)
    assert [policy.retry_delay(n) for n in (1, 2, 3, 4)] == [1, 2, 4, 5]


def test_alerts_config_from_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[alerts]\nchannels = ["log://", "json://127.0.0.1:9/x"]\ngroup_wait = 1\n'
                    "[alerts.rules]\nrestart_storm_count = 7\n")
    config = load_config(path, env={})
    assert config.alerts.channels == ("log://", "json://127.0.0.1:9/x")
    assert config.alerts.group_wait == 1.0 and config.alerts.rules.restart_storm_count == 7
    path.write_text('[alerts]\nchannels = "log://"\n')
    with pytest.raises(ConfigError, match="alerts.channels.*a list of strings"):
        load_config(path, env={})


def test_alert_url_flags_add_channels_and_a_bad_one_exits_2(tmp_path: Path) -> None:
    args = build_parser().parse_args(["--alert-url", "json://127.0.0.1:9/x",
                                      "--alert-url", "log://"])
    assert _with_alert_urls(Config(), args.alert_url).alerts.channels == (
        "log://", "json://127.0.0.1:9/x")
    assert main(["--data-dir", str(tmp_path), "--alert-url", "nosuchscheme://x"]) == 2
