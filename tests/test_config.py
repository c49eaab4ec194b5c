"""Connection settings, the resolution order of ``config``, the plan, and bad networks."""

from __future__ import annotations

import pickle
import time

import pytest

import rushopt
from rushopt import RedisConfig, RedisServer, Rush, rush_available, rush_config, rush_plan
from rushopt.core.config import redact_url, resolve_config
from rushopt.exceptions import RedisUnavailableError


def _refused_url(password: str = "s3cret-pw") -> str:
    # a port nobody listens on: bind one, close it, use it
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"redis://:{password}@127.0.0.1:{port}/0"


def test_unreachable_redis_raises_connection_error_without_the_password() -> None:
    # Given a URL with a password where no Redis listens
    url = _refused_url()
    # When a controller connects
    started = time.monotonic()
    with pytest.raises(ConnectionError) as info:
        Rush(config=url)
    # Then a ConnectionError names the URL with the password redacted, within seconds
    assert isinstance(info.value, RedisUnavailableError)
    assert "<redacted>" in str(info.value)
    assert "s3cret-pw" not in str(info.value)
    assert time.monotonic() - started < 30


def test_rush_plan_pings_redis_and_stores_nothing_when_unreachable() -> None:
    with pytest.raises(ConnectionError):
        rush_plan(config=_refused_url())
    assert not rush_available()
    assert rush_config() == {}


def test_config_repr_and_redaction_hide_passwords() -> None:
    config = RedisConfig("redis://user:pa%24ss@host:6379/0", password="other")
    assert "pa%24ss" not in repr(config)
    assert "other" not in repr(config)
    assert redact_url("redis://:x@h:1/0") == "redis://:<redacted>@h:1/0"
    assert redact_url("redis://h:1/0") == "redis://h:1/0"


def test_config_rejects_unknown_scheme_and_types() -> None:
    with pytest.raises(ValueError, match="url"):
        RedisConfig("http://localhost")
    with pytest.raises(TypeError, match="config"):
        resolve_config(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "a{b", "a}b", "{x}"])
def test_invalid_network_ids_are_rejected(redis_url: str, bad: str) -> None:
    with pytest.raises(ValueError, match="network_id"):
        Rush(network_id=bad, config=redis_url)


def test_non_string_network_id_is_a_type_error(redis_url: str) -> None:
    with pytest.raises(TypeError, match="network_id"):
        Rush(network_id=3, config=redis_url)  # type: ignore[arg-type]


def test_resolution_order_plan_then_env_then_embedded(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given REDIS_URL pointing to one server and a plan pointing to another
    with RedisServer() as other:
        monkeypatch.setenv("REDIS_URL", other.url)
        # Then REDIS_URL is used without a plan
        assert resolve_config(None).url == other.url
        # And the plan wins over REDIS_URL
        rush_plan(config=redis_url, n_workers=3)
        assert resolve_config(None).url == redis_url
        assert rush_config()["n_workers"] == 3
        rushopt.remove_rush_plan()
        assert resolve_config(None).url == other.url


def test_rush_without_config_uses_the_embedded_server(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no plan and no REDIS_URL
    # When a controller is created without config
    rush = Rush()
    try:
        # Then it runs on the process's embedded server, through its Unix socket
        server = rushopt.core.server.embedded_server()
        assert server.unix_url is not None
        assert rush.config.url == server.unix_url
        assert rush.redis_info["process_id"] == server.pid
        keys = rush.push_tasks([{"x": 1}])
        assert rush.queued_tasks == keys
    finally:
        rush.reset()


def test_a_pickled_controller_reconnects(rush: Rush) -> None:
    keys = rush.push_tasks([{"x": 1}])
    copy = pickle.loads(pickle.dumps(rush))
    assert copy.network_id == rush.network_id
    assert copy.queued_tasks == keys
    copy.reconnect()
    assert copy.n_tasks == 1


def test_seed_must_be_a_non_negative_integer(redis_url: str) -> None:
    with pytest.raises(TypeError, match="seed"):
        Rush(config=redis_url, seed=1.5)  # type: ignore[arg-type]
