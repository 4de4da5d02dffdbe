"""No Docker engine runs here, so check what can be checked without one: the compose
file parses, Kafka is the official image, and every Cadenza service runs a command
that exists in the CLI."""

from pathlib import Path

import click
import yaml

from cadenza.cli import cli

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def _resolve(command: list[str]) -> click.Command:
    group: click.Command = cli
    ctx = click.Context(cli)
    for word in command:
        if word.startswith("-"):
            break
        assert isinstance(group, click.Group), f"{group.name} has no subcommand {word!r}"
        sub = group.get_command(ctx, word)
        assert sub is not None, f"`cadenza {' '.join(command)}`: no command {word!r}"
        group = sub
    return group


def test_compose_services_run_existing_cli_commands() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert services["kafka"]["image"].startswith("apache/kafka:4.")
    cadenza_services = {n: s for n, s in services.items() if s.get("image") == "cadenza:latest"}
    assert cadenza_services, "no Cadenza service in the compose file"
    for name, service in cadenza_services.items():
        command = service["command"]
        assert not isinstance(_resolve(command), click.Group), f"{name}: {command} is a group"
        assert service["environment"]["CADENZA_BOOTSTRAP_SERVERS"] == "kafka:19092"


def test_dockerfile_installs_the_package_and_runs_the_cli() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    for folder in ("sdk", "processors", "topics", "schemas"):
        assert f"COPY {folder} ./{folder}" in text
    assert 'ENTRYPOINT ["cadenza"]' in text
