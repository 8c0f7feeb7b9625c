"""KafkaSettings → aiokafka options: one builder for producer, consumer and admin client."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import certifi
import pytest

from tranche.core.settings import KafkaSettings, SettingsError, load_settings

PASSWORD = "s3cret-sasl-password"


@pytest.fixture(autouse=True)
def _no_kafka_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("BOOTSTRAP_SERVERS", "SECURITY_PROTOCOL", "SASL_USERNAME", "SASL_PASSWORD"):
        monkeypatch.delenv(f"KAFKA_{name}", raising=False)


@pytest.fixture
def client_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=tranche-test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_plaintext_options_are_the_same_for_every_client_but_the_producer_extras() -> None:
    kafka = KafkaSettings(bootstrap_servers="k1:9092,k2:9092", client_id="svc")

    common = {
        "bootstrap_servers": "k1:9092,k2:9092",
        "client_id": "svc",
        "request_timeout_ms": 30_000,
        "security_protocol": "PLAINTEXT",
    }
    assert kafka.client_options("consumer") == common
    assert kafka.client_options("admin") == common
    assert kafka.client_options("producer") == common | {"acks": "all", "enable_idempotence": True}


def test_sasl_ssl_with_scram_carries_credentials_and_a_tls_context() -> None:
    kafka = KafkaSettings(
        bootstrap_servers="k:9093",
        security_protocol="sasl_ssl",
        sasl_mechanism="scram-sha-512",
        sasl_username="svc-user",
        sasl_password=PASSWORD,
        ssl_cafile=Path(certifi.where()),
    )

    options = kafka.client_options("consumer")

    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "svc-user",
        PASSWORD,
    )
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert len(context.get_ca_certs()) > 10  # the CA file was loaded
    assert PASSWORD not in repr(kafka) and PASSWORD not in str(kafka.model_dump())


def test_sasl_plaintext_has_no_tls_context() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_PLAINTEXT", sasl_username="u", sasl_password=PASSWORD
    )
    options = kafka.client_options("admin")
    assert options["sasl_mechanism"] == "PLAIN" and "ssl_context" not in options


def test_mutual_tls_loads_the_client_certificate(client_pair: tuple[Path, Path]) -> None:
    cert, key = client_pair
    kafka = KafkaSettings(security_protocol="SSL", ssl_certfile=cert, ssl_keyfile=key)
    assert isinstance(kafka.client_options("producer")["ssl_context"], ssl.SSLContext)


def test_a_key_that_does_not_match_the_certificate_fails(client_pair: tuple[Path, Path]) -> None:
    cert, _key = client_pair
    kafka = KafkaSettings(security_protocol="SSL", ssl_certfile=cert, ssl_keyfile=cert)
    with pytest.raises(ssl.SSLError):
        kafka.client_options("producer")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"},
            "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        ({"KAFKA_SASL_PASSWORD": PASSWORD}, "does not use SASL"),
        ({"KAFKA_SECURITY_PROTOCOL": "KERBEROS"}, "KAFKA_SECURITY_PROTOCOL"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "GSSAPI"},
            "KAFKA_SASL_MECHANISM",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
            "KAFKA_SSL_CAFILE",
        ),
        ({"KAFKA_SSL_CAFILE": certifi.where()}, "does not use TLS"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": certifi.where()},
            "need KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_inconsistent_security_settings_stop_the_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings(KafkaSettings)
    assert named in str(info.value)
    assert PASSWORD not in str(info.value)
