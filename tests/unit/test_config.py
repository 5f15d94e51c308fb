"""Config loading: default.toml equals the attrs defaults; bad input fails naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import attrs
import pytest

from ironclad.config import (
    BackoffConfig,
    Config,
    ConfigError,
    Credentials,
    Secret,
    load_config,
)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_TOML = REPO / "config" / "default.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(text)
    return path


def test_default_toml_equals_attrs_defaults() -> None:
    assert load_config(DEFAULT_TOML, env={}) == Config()


def test_default_toml_lists_every_file_key() -> None:
    """Every key the loader accepts appears in default.toml (commented-out for unset ones)."""
    table = tomllib.loads(DEFAULT_TOML.read_text())
    text = DEFAULT_TOML.read_text()

    def keys(cls: type, prefix: str) -> list[str]:
        out = []
        for field in attrs.fields(attrs.resolve_types(cls)):
            if field.name == "credentials":
                continue
            if attrs.has(field.type):
                out += keys(field.type, f"{prefix}{field.name}.")
            else:
                out.append(f"{prefix}{field.name}")
        return out

    for key in keys(Config, ""):
        *sections, name = key.split(".")
        section = table
        for part in sections:
            section = section[part]
        assert name in section or f"# {name} = " in text, key


def test_no_file_means_defaults() -> None:
    assert load_config(None, env={}) == Config()


def test_file_overrides_only_given_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[node]\nname = "n2"\n[supervision]\nperiod = 7\n[supervision.backoff]\nmax = 9.5\n'
        '[venue]\nurl = "http://127.0.0.1:9000"\n',
    )
    config = load_config(path, env={})
    assert config.node.name == "n2"
    assert config.node.data_dir == Path("data")
    assert config.supervision.period == 7.0 and isinstance(config.supervision.period, float)
    assert config.supervision.backoff == BackoffConfig(max=9.5)
    assert config.venue.url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[node]\nnam = "x"', "node.nam", "one of the known keys: name, data_dir"),
        ("bogus = 1", "bogus", "one of the known keys"),
        ('[supervision]\nintensity = "three"', "supervision.intensity", "an integer"),
        ("[supervision]\nintensity = -1", "supervision.intensity", ">= 0"),
        ("[supervision]\nintensity = 2.5", "supervision.intensity", "an integer"),
        ("[supervision]\nperiod = true", "supervision.period", "a number"),
        ("[supervision.backoff]\nmax = 0.01", "supervision.backoff.max", ">= initial"),
        ("[supervision.backoff]\njitter = 2", "supervision.backoff.jitter", "between 0 and 1"),
        ("[supervision.backoff]\nfactor = 0.5", "supervision.backoff.factor", ">= 1"),
        ('[logging]\nlevel = "LOUD"', "logging.level", "one of TRACE"),
        ("[logging]\njson = 1", "logging.json", "a boolean"),
        ("node = 3", "node", "a table"),
        ('[node]\nname = "has space"', "node.name", "letters, digits"),
        ('[node]\ndata_dir = ""', "node.data_dir", "a path string"),
        ('[venue]\nurl = "ftp://x"', "venue.url", "http"),
        ('[venue]\nexchange = "Binance!"', "venue.exchange", "lowercase exchange id"),
        ('[venue]\napi_key_env = "lower"', "venue.api_key_env", "environment variable name"),
        ('[venue]\napi_key = "abc123"', "venue.api_key", "no secret in the config file"),
        ('[venue]\nsecret = "abc123"', "venue.secret", "environment variable named by"),
        ("[node\n", "--config", "valid TOML"),
    ],
)
def test_bad_config_names_key_and_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.key == key
    assert expected in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="readable TOML file"):
        load_config(tmp_path / "absent.toml", env={})


def test_secrets_come_from_named_env_vars_and_never_show(tmp_path: Path) -> None:
    path = write(tmp_path, '[venue]\napi_key_env = "MY_KEY"\n')
    config = load_config(path, env={"MY_KEY": "k-123456", "IRONCLAD_API_SECRET": "s-987654"})
    assert config.credentials.api_key == Secret("k-123456")
    assert config.credentials.api_secret is not None
    assert config.credentials.api_secret.reveal() == "s-987654"
    assert config.credentials.token is None
    assert set(config.credentials.values()) == {"k-123456", "s-987654"}
    for text in (repr(config), str(config), repr(config.credentials.api_key)):
        assert "k-123456" not in text and "s-987654" not in text


def test_a_secret_pasted_as_variable_name_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, '[venue]\napi_key_env = "sk-live-0123456789"\n')
    with pytest.raises(ConfigError, match="venue.api_key_env") as caught:
        load_config(path, env={})
    assert "sk-live-0123456789" not in str(caught.value)
    secret_key = write(tmp_path, '[venue]\ntoken = "0123456789abcdef"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(secret_key, env={})
    assert "0123456789abcdef" not in str(caught.value)


def test_empty_env_var_means_no_secret() -> None:
    config = load_config(None, env={"IRONCLAD_API_KEY": ""})
    assert config.credentials == Credentials()


def test_cli_overrides() -> None:
    config = Config().with_overrides(data_dir=Path("/tmp/x"), log_level="debug", log_json=True)
    assert config.node.data_dir == Path("/tmp/x")
    assert config.logging.level == "DEBUG" and config.logging.json is True
    assert Config().with_overrides() == Config()
    with pytest.raises(ConfigError, match="logging.level"):
        Config().with_overrides(log_level="loud")


def test_backoff_defaults_match_supervisors() -> None:
    """The config's defaults are the supervision library's defaults: nothing drifts."""
    from supervisors import BackoffPolicy, SupervisorSpec

    policy, backoff = BackoffPolicy(), BackoffConfig()
    for name in ("initial", "factor", "max", "jitter", "reset_after"):
        assert getattr(backoff, name) == getattr(policy, name), name
    spec = attrs.fields_dict(SupervisorSpec)
    supervision = Config().supervision
    assert supervision.intensity == spec["intensity"].default
    assert supervision.period == spec["period"].default
