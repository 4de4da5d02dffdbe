"""Every Cadenza setting, declared once: name, type, environment variable, default, doc.

The CLI, the processors and the SDK all read settings through :class:`Settings`;
nothing else reads ``CADENZA_*`` environment variables.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["SETTINGS", "Setting", "Settings", "SettingsError", "resolve"]


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message says which and how to fix it."""


def _default_cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "cadenza")


def _default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return str(Path(base) / "cadenza")


_NAMESPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def _parse_namespace(raw: str) -> str:
    if not _NAMESPACE_RE.match(raw):
        raise SettingsError(
            f"namespace {raw!r} is not usable as a topic prefix: use 1-63 characters of "
            "letters, digits, '_' or '-', starting with a letter or digit"
        )
    return raw


def _parse_positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{raw!r} is not a whole number") from None
    if value <= 0:
        raise SettingsError(f"{value} must be greater than zero")
    return value


def _parse_retention_ms(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{raw!r} is not a whole number of milliseconds") from None
    if value == 0 or value < -1:
        raise SettingsError(f"{value}: use -1 (keep forever) or a positive number of milliseconds")
    return value


def _parse_port(raw: str) -> int:
    value = _parse_positive_int(raw)
    if value > 65535:
        raise SettingsError(f"port {value} is above 65535")
    return value


def _parse_optional_str(raw: str) -> str | None:
    return raw or None


def _parse_http_address(raw: str) -> str:
    """``off`` (or none/no), ``HOST:PORT``, ``[v6]:PORT``; a bare ``PORT`` or ``:PORT`` is
    on loopback, never every interface by accident."""
    text = raw.strip()
    if text.lower() in ("off", "none", "no"):
        return "off"
    host, _, port = text.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise SettingsError(f"{raw!r} is not HOST:PORT (e.g. 127.0.0.1:8233) or 'off'")
    return f"{host or '127.0.0.1'}:{port}"


_CODECS = ("auto", "native", "python")


def _parse_codec(raw: str) -> str:
    if raw not in _CODECS:
        raise SettingsError(f"codec {raw!r} is not one of {', '.join(_CODECS)}")
    return raw


@dataclasses.dataclass(frozen=True)
class Setting:
    """One declared setting: its field name, environment variable, parser, default and doc."""

    name: str
    env: str
    parse: Callable[[str], Any]
    default: Callable[[], Any]
    doc: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "namespace",
        "CADENZA_NAMESPACE",
        _parse_namespace,
        lambda: "cadenza",
        "Prefix of every topic and consumer group, so several namespaces share one cluster.",
    ),
    Setting(
        "bootstrap_servers",
        "CADENZA_BOOTSTRAP_SERVERS",
        _parse_optional_str,
        lambda: None,
        "Kafka bootstrap servers of an existing cluster. Unset: the local broker "
        "that `cadenza kafka start` runs on 127.0.0.1:<kafka_port>.",
    ),
    Setting(
        "security_protocol",
        "CADENZA_KAFKA_SECURITY_PROTOCOL",
        _parse_optional_str,
        lambda: None,
        "Kafka client security.protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.",
    ),
    Setting(
        "sasl_mechanism",
        "CADENZA_KAFKA_SASL_MECHANISM",
        _parse_optional_str,
        lambda: None,
        "Kafka client sasl.mechanism, e.g. PLAIN, SCRAM-SHA-256, SCRAM-SHA-512.",
    ),
    Setting(
        "sasl_username",
        "CADENZA_KAFKA_SASL_USERNAME",
        _parse_optional_str,
        lambda: None,
        "SASL user name.",
    ),
    Setting(
        "sasl_password",
        "CADENZA_KAFKA_SASL_PASSWORD",
        _parse_optional_str,
        lambda: None,
        "SASL password.",
    ),
    Setting(
        "ssl_cafile",
        "CADENZA_KAFKA_SSL_CAFILE",
        _parse_optional_str,
        lambda: None,
        "PEM file of the CA that signed the brokers' certificates (ssl.ca.location).",
    ),
    Setting(
        "ssl_certfile",
        "CADENZA_KAFKA_SSL_CERTFILE",
        _parse_optional_str,
        lambda: None,
        "PEM client certificate for mutual TLS (ssl.certificate.location).",
    ),
    Setting(
        "ssl_keyfile",
        "CADENZA_KAFKA_SSL_KEYFILE",
        _parse_optional_str,
        lambda: None,
        "PEM client private key for mutual TLS (ssl.key.location).",
    ),
    Setting(
        "partitions",
        "CADENZA_PARTITIONS",
        _parse_positive_int,
        lambda: 16,
        "Partition count of `commands` and `history` (fixed at creation; the unit of "
        "engine parallelism: choose at least the number of engine instances you may ever run).",
    ),
    Setting(
        "reply_partitions",
        "CADENZA_REPLY_PARTITIONS",
        _parse_positive_int,
        lambda: 32,
        "Partition count of `replies` (fixed at creation): each client process reads one "
        "partition of its own; choose at least the number of client processes run at once.",
    ),
    Setting(
        "history_retention_ms",
        "CADENZA_HISTORY_RETENTION_MS",
        _parse_retention_ms,
        lambda: -1,
        "retention.ms of `history` when topics are created: -1 keeps every event forever "
        "(replay and rebuilds need the whole history).",
    ),
    Setting(
        "replication_factor",
        "CADENZA_REPLICATION_FACTOR",
        _parse_positive_int,
        lambda: 1,
        "Replication factor of every topic Cadenza creates (3 on a production cluster).",
    ),
    Setting(
        "kafka_port",
        "CADENZA_KAFKA_PORT",
        _parse_port,
        lambda: 9092,
        "Client port of the local broker; its controller listens on the next port.",
    ),
    Setting(
        "cache_dir",
        "CADENZA_CACHE_DIR",
        str,
        _default_cache_dir,
        "Where downloaded Kafka jars are cached.",
    ),
    Setting(
        "data_dir",
        "CADENZA_DATA_DIR",
        str,
        _default_data_dir,
        "Where the local broker and the processors keep their data (logs, RocksDB stores).",
    ),
    Setting(
        "http_address",
        "CADENZA_HTTP_ADDRESS",
        _parse_http_address,
        lambda: "127.0.0.1:8233",
        "Where `cadenza processors run` serves the web UI, its JSON API and Prometheus "
        "/metrics (HOST:PORT; 0.0.0.0:PORT for every interface; 'off' for none).",
    ),
    Setting(
        "codec",
        "CADENZA_CODEC",
        _parse_codec,
        lambda: "auto",
        "Avro codec: 'native' (C, built at install), 'python' (generated Python, about 4x "
        "slower; same bytes), or 'auto': native when it was built.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


def resolve(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """One setting from the environment (or its default), without resolving the others.

    For code that needs a single setting at import time (the codec's choice), where
    a bad value of an unrelated variable must not get in the way.

    Raises:
        SettingsError: the value cannot be parsed; the message names the variable.
    """
    setting = _BY_NAME[name]
    raw = (os.environ if environ is None else environ).get(setting.env)
    return _parsed(setting, raw, setting.env) if raw else setting.default()


def _parsed(setting: Setting, raw: Any, origin: str) -> Any:
    """``raw`` parsed (a string) or as given (an override of the right type already)."""
    try:
        return setting.parse(str(raw)) if isinstance(raw, str) else raw
    except SettingsError as exc:
        raise SettingsError(f"{origin}: {exc}") from None


@dataclasses.dataclass(frozen=True)
class Settings:
    """The resolved settings; fields mirror :data:`SETTINGS` (a test pins that).

    Build with :meth:`from_env` (or :meth:`defaults`); change with ``dataclasses.replace``.
    """

    namespace: str
    bootstrap_servers: str | None
    security_protocol: str | None
    sasl_mechanism: str | None
    sasl_username: str | None
    sasl_password: str | None
    ssl_cafile: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None
    partitions: int
    reply_partitions: int
    history_retention_ms: int
    replication_factor: int
    kafka_port: int
    cache_dir: str
    data_dir: str
    http_address: str
    codec: str

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> Settings:
        """Resolve settings: overrides (None: not given), then the environment, then defaults.

        Raises:
            SettingsError: a value cannot be parsed; the message names the variable.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            override = overrides.pop(setting.name, None)
            if override is not None:
                raw, origin = override, f"--{setting.name.replace('_', '-')}"
            elif env.get(setting.env):
                raw, origin = env[setting.env], setting.env
            else:
                values[setting.name] = setting.default()
                continue
            values[setting.name] = _parsed(setting, raw, origin)
        if overrides:
            raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :meth:`from_env` give these settings back
        (for a child process); unset optional settings are left out."""
        out = {}
        for setting in SETTINGS:
            value = getattr(self, setting.name)
            if value is not None:
                out[setting.env] = str(value)
        return out

    def replace(self, **changes: Any) -> Settings:
        """These settings with some changed; a string is parsed as its variable's would be.

        Raises:
            SettingsError: a value cannot be parsed; the message names the option.
        """
        values = {}
        for name, raw in changes.items():
            if name not in _BY_NAME:
                raise TypeError(f"unknown setting: {name}")
            values[name] = _parsed(_BY_NAME[name], raw, f"--{name.replace('_', '-')}")
        return dataclasses.replace(self, **values)

    @classmethod
    def defaults(cls) -> Settings:
        """Every setting at its default, ignoring the environment."""
        return cls.from_env({})

    @property
    def uses_local_broker(self) -> bool:
        """True when no external cluster is configured and the local broker is meant."""
        return self.bootstrap_servers is None

    @property
    def resolved_bootstrap_servers(self) -> str:
        """The bootstrap servers every client connects to."""
        return self.bootstrap_servers or f"127.0.0.1:{self.kafka_port}"

    def kafka_config(self) -> dict[str, str | int | float | bool]:
        """librdkafka (confluent-kafka) client settings: bootstrap plus security pass-through."""
        config: dict[str, str | int | float | bool] = {
            "bootstrap.servers": self.resolved_bootstrap_servers
        }
        optional = {
            "security.protocol": self.security_protocol,
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_cafile,
            "ssl.certificate.location": self.ssl_certfile,
            "ssl.key.location": self.ssl_keyfile,
        }
        config.update({k: v for k, v in optional.items() if v is not None})
        return config

    def producer_config(self) -> dict[str, str | int | float | bool]:
        """Producer settings: acks=all, idempotence, one request in flight, and Kafka's
        Java (murmur2) partitioner.

        Every producer to ``commands`` must partition as the Java client does, or one
        workflow's commands could land on two partitions (see schemas/README.md).

        One request in flight: librdkafka 2.16 can lose a record and report it
        delivered when a producer's first batch to a partition is refused (the leader
        has not created the partition yet, or is moving) while a later batch in flight
        is accepted: the broker takes that one as the producer's first write there
        (it has no sequence state for it, KIP-360), and librdkafka counts the refused
        batch as "implicitly acked" (confluent-kafka-go issue #921 is the same loss).
        With one request in flight the refused batch is retried before the next is
        sent. The engine's transactional producer too: nothing shows that it is safe
        from the same loss, which would leave a hole in a committed transaction.
        Measured at 200 in flight, alternating pairs, in the clients and worker:
        404 / 340 / 359 workflows/s against 385 / 379 / 427/s with five; in the
        engine: 362 / 394 / 382 against 331 / 419 / 329/s; inside the runs' spread
        either way, and 20/s p50 did not move (BENCHMARKS, entry 39).
        """
        return {
            **self.kafka_config(),
            "partitioner": "murmur2_random",
            "acks": "all",
            "enable.idempotence": True,
            "max.in.flight": 1,
            "linger.ms": 0,
        }

    def topic(self, name: str) -> str:
        """The full topic name of catalog entry ``name`` in this namespace."""
        return f"{self.namespace}.{name}"


def describe_settings() -> list[tuple[str, str, str]]:
    """(environment variable, default, doc) of every setting, for `cadenza settings`."""
    rows = []
    for s in SETTINGS:
        default = s.default()
        rows.append((s.env, "" if default is None else str(default), s.doc))
    return rows


def setting(name: str) -> Setting:
    """The declaration of setting ``name``."""
    return _BY_NAME[name]
