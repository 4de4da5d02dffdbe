import dataclasses

import pytest

from cadenza import Settings, SettingsError
from cadenza._settings import SETTINGS


def test_every_declared_setting_is_a_field_and_back() -> None:
    fields = {f.name for f in dataclasses.fields(Settings)}
    assert fields == {s.name for s in SETTINGS}
    assert all(s.env.startswith("CADENZA_") for s in SETTINGS)


def test_defaults_ignore_environment() -> None:
    settings = Settings.from_env({})
    assert settings.namespace == "cadenza"
    assert settings.partitions == 16
    assert settings.uses_local_broker
    assert settings.resolved_bootstrap_servers == "127.0.0.1:9092"


def test_environment_then_overrides() -> None:
    env = {"CADENZA_NAMESPACE": "orders", "CADENZA_PARTITIONS": "8"}
    assert Settings.from_env(env).namespace == "orders"
    assert Settings.from_env(env, namespace="billing").namespace == "billing"
    assert Settings.from_env(env, namespace=None).partitions == 8


def test_bad_values_name_the_variable_and_the_fix() -> None:
    with pytest.raises(SettingsError, match="CADENZA_PARTITIONS: 'many' is not a whole number"):
        Settings.from_env({"CADENZA_PARTITIONS": "many"})
    with pytest.raises(SettingsError, match="--namespace: namespace 'a b' is not usable"):
        Settings.from_env({}, namespace="a b")
    with pytest.raises(TypeError, match="unknown settings: colour"):
        Settings.from_env({}, colour="red")


def test_security_settings_pass_through_to_the_client() -> None:
    env = {
        "CADENZA_BOOTSTRAP_SERVERS": "k1:9093,k2:9093",
        "CADENZA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "CADENZA_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "CADENZA_KAFKA_SASL_USERNAME": "u",
        "CADENZA_KAFKA_SASL_PASSWORD": "p",
        "CADENZA_KAFKA_SSL_CAFILE": "/etc/ca.pem",
    }
    settings = Settings.from_env(env)
    assert not settings.uses_local_broker
    assert settings.kafka_config() == {
        "bootstrap.servers": "k1:9093,k2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "p",
        "ssl.ca.location": "/etc/ca.pem",
    }


def test_settings_are_frozen() -> None:
    settings = Settings.defaults()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.namespace = "x"  # type: ignore[misc]
    assert dataclasses.replace(settings, namespace="x").namespace == "x"


def test_resolve_reads_one_setting_and_names_the_variable() -> None:
    from cadenza._settings import resolve

    assert resolve("codec", {}) == "auto"
    # An unrelated bad value does not get in the way of the one asked for.
    assert resolve("codec", {"CADENZA_CODEC": "python", "CADENZA_PARTITIONS": "x"}) == "python"
    with pytest.raises(SettingsError, match="CADENZA_CODEC: codec 'fast' is not one of auto"):
        resolve("codec", {"CADENZA_CODEC": "fast"})


def test_producers_keep_one_request_in_flight() -> None:
    # More than one, and librdkafka can report a refused first batch to a partition
    # delivered when a later one is taken (Settings.producer_config).
    config = Settings.defaults().producer_config()
    assert config["enable.idempotence"] is True and config["acks"] == "all"
    assert config["max.in.flight"] == 1
