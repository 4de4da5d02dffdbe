"""Provision and run a single-node Apache Kafka broker (KRaft) on loopback.

The jars come from Maven Central through ``mvn dependency:copy-dependencies``
on the small POM next to this file and are cached under the user's cache
directory, so only the first start needs the network. The broker is a plain
``java`` process (combined broker + controller) that outlives the command
that started it; its pid, ports and logs live in ``<data dir>/kafka``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from cadenza._settings import Settings

__all__ = ["KAFKA_VERSION", "BrokerInfo", "LocalKafka", "LocalKafkaError"]

KAFKA_VERSION = "4.1.1"
"""The Apache Kafka version every Cadenza test runs against."""

_MIN_JAVA = 17
_START_TIMEOUT_S = 90.0
_STOP_TIMEOUT_S = 30.0


class LocalKafkaError(RuntimeError):
    """The local broker cannot be provisioned, started or stopped; the message names the fix."""


@dataclasses.dataclass(frozen=True)
class BrokerInfo:
    """A running local broker."""

    pid: int
    port: int
    controller_port: int
    data_dir: str
    version: str

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"


def _say(message: str) -> None:
    print(message, flush=True)


class LocalKafka:
    """The project's local Kafka broker.

    Args:
        settings: where the jar cache (``cache_dir``) and data (``data_dir``) live,
            and the client port (``kafka_port``).
        port: overrides ``settings.kafka_port``; ``0`` picks free ports.
        progress: called with one line per step of a long operation.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        port: int | None = None,
        progress: Callable[[str], None] = _say,
        version: str = KAFKA_VERSION,
    ) -> None:
        self._settings = settings
        self._port = settings.kafka_port if port is None else port
        self._progress = progress
        self.version = version
        self.home = Path(settings.data_dir) / "kafka"
        self.jar_dir = Path(settings.cache_dir) / f"kafka-{version}" / "libs"

    # -- paths --------------------------------------------------------------------------------

    @property
    def log_dir(self) -> Path:
        """Where the broker's own log (server.log) and its stdout go."""
        return self.home / "logs"

    @property
    def _state_file(self) -> Path:
        return self.home / "broker.json"

    @property
    def settings(self) -> Settings:
        """Settings that point clients at this broker (valid once started)."""
        info = self.info()
        port = info.port if info else self._port
        return dataclasses.replace(self._settings, kafka_port=port, bootstrap_servers=None)

    # -- provisioning -------------------------------------------------------------------------

    def check_java(self) -> str:
        """Return the java executable, or raise naming the fix when it is missing or too old."""
        java_home = os.environ.get("JAVA_HOME")
        java = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
        if not java or not Path(java).exists():
            raise LocalKafkaError(
                f"no Java found: Kafka {self.version} needs Java {_MIN_JAVA} or newer. "
                "Install it (Debian: `apt-get install openjdk-17-jre-headless`) or set JAVA_HOME, "
                "or set CADENZA_BOOTSTRAP_SERVERS to use an existing Kafka cluster."
            )
        out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
        if not match:
            raise LocalKafkaError(f"could not read the version of {java}: {out.stderr.strip()}")
        major = int(match.group(1))
        if major == 1 and match.group(2):  # "1.8" style
            major = int(match.group(2))
        if major < _MIN_JAVA:
            raise LocalKafkaError(
                f"{java} is Java {major}; Kafka {self.version} needs Java {_MIN_JAVA} or newer. "
                "Install a newer JDK and put it first on PATH or set JAVA_HOME."
            )
        return java

    def jars_ready(self) -> bool:
        """True when the jar cache for this version is complete."""
        return (self.jar_dir / ".complete").exists()

    def fetch(self) -> Path:
        """Download the broker's jars into the cache (once) and return the jar directory."""
        if self.jars_ready():
            return self.jar_dir
        mvn = shutil.which("mvn")
        if not mvn:
            raise LocalKafkaError(
                f"Kafka {self.version} is not in the cache ({self.jar_dir}) and `mvn` is not on "
                "PATH to fetch it: install Maven (Debian: `apt-get install maven`), or set "
                "CADENZA_BOOTSTRAP_SERVERS to use an existing Kafka cluster."
            )
        self._progress(
            f"fetching Apache Kafka {self.version} from Maven Central into {self.jar_dir}"
        )
        staging = self.jar_dir.with_name(f"libs.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        pom = resources.files("cadenza.localkafka").joinpath("pom.xml")
        with resources.as_file(pom) as pom_path:
            cmd = [
                mvn,
                "-B",
                "-q",
                "-f",
                str(pom_path),
                f"-Dkafka.version={self.version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
                "-DincludeScope=runtime",
            ]
            started = time.monotonic()
            out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = "\n".join((out.stdout + out.stderr).strip().splitlines()[-15:])
            raise LocalKafkaError(
                f"mvn could not fetch Kafka {self.version} (exit {out.returncode}). Check access "
                f"to Maven Central (proxy settings in ~/.m2/settings.xml). Last output:\n{tail}"
            )
        (staging / ".complete").write_text(self.version)
        shutil.rmtree(self.jar_dir, ignore_errors=True)
        staging.rename(self.jar_dir)
        size = sum(f.stat().st_size for f in self.jar_dir.iterdir())
        self._progress(
            f"fetched {len(list(self.jar_dir.glob('*.jar')))} jars ({size / 2**20:.0f} MiB) "
            f"in {time.monotonic() - started:.1f}s"
        )
        return self.jar_dir

    # -- lifecycle ----------------------------------------------------------------------------

    def info(self) -> BrokerInfo | None:
        """The running broker recorded in the data directory, or None."""
        try:
            data = json.loads(self._state_file.read_text())
            info = BrokerInfo(**data)
        except (OSError, ValueError, TypeError):
            return None
        return info if _alive(info.pid) else None

    def start(self, *, wait: bool = True) -> BrokerInfo:
        """Start the broker (a no-op when it already runs) and wait until it answers."""
        running = self.info()
        if running:
            self._progress(
                f"Kafka already running (pid {running.pid}) on {running.bootstrap_servers}"
            )
            return running
        java = self.check_java()
        jars = self.fetch()
        port, controller_port = self._choose_ports()
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        properties = self.home / "server.properties"
        properties.write_text(self._server_properties(port, controller_port))
        if not (self.home / "data" / "meta.properties").exists():
            self._format(java, jars, properties)

        stdout = open(self.log_dir / "stdout.log", "ab")
        log4j = resources.files("cadenza.localkafka").joinpath("log4j2.yaml")
        log4j_copy = self.home / "log4j2.yaml"
        log4j_copy.write_text(log4j.read_text())
        cmd = [
            java,
            "-Xms256m",
            "-Xmx1g",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.log_dir}",
            f"-Dlog4j2.configurationFile={log4j_copy}",
            "-cp",
            f"{jars}/*",
            "kafka.Kafka",
            str(properties),
        ]
        started = time.monotonic()
        # A session of its own: the broker outlives the CLI and a Ctrl-C in that terminal.
        proc = subprocess.Popen(
            cmd,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        stdout.close()
        info = BrokerInfo(proc.pid, port, controller_port, str(self.home), self.version)
        self._state_file.write_text(json.dumps(dataclasses.asdict(info)))
        if wait:
            self._wait_until_up(proc, info)
            self._progress(
                f"Kafka {self.version} up on {info.bootstrap_servers} (pid {proc.pid}) "
                f"in {time.monotonic() - started:.1f}s; logs in {self.log_dir}"
            )
        return info

    def stop(self) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after 30 s). False if none ran."""
        info = self.info()
        if not info:
            self._state_file.unlink(missing_ok=True)
            return False
        os.kill(info.pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT_S
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(info.pid):
            self._progress(
                f"Kafka (pid {info.pid}) did not stop in {_STOP_TIMEOUT_S:.0f}s: killing it"
            )
            os.kill(info.pid, signal.SIGKILL)
            while _alive(info.pid):
                time.sleep(0.05)
        self._state_file.unlink(missing_ok=True)
        return True

    def answers(self, timeout: float = 2.0) -> bool:
        """True when a broker answers a metadata request on the configured address."""
        from confluent_kafka.admin import AdminClient

        info = self.info()
        port = info.port if info else self._port
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}", "log_level": 0})
        try:
            return bool(admin.list_topics(timeout=timeout).brokers)
        except Exception:
            return False

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the broker's logs, for error messages."""
        chunks = []
        for name in ("server.log", "stdout.log"):
            path = self.log_dir / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                chunks.append(f"--- {path} ---\n" + "\n".join(text))
        return "\n".join(chunks) or f"(no log files in {self.log_dir})"

    # -- internals ----------------------------------------------------------------------------

    def _choose_ports(self) -> tuple[int, int]:
        if self._port == 0:
            return _free_port(), _free_port()
        for port in (self._port, self._port + 1):
            if not _port_free(port):
                raise LocalKafkaError(
                    f"port {port} on 127.0.0.1 is in use, so the local broker cannot listen on "
                    f"{self._port} (clients) and {self._port + 1} (controller). Stop what uses it "
                    f"(`ss -ltnp 'sport = :{port}'`), or choose other ports with --port / "
                    "CADENZA_KAFKA_PORT, or point at that cluster with CADENZA_BOOTSTRAP_SERVERS."
                )
        return self._port, self._port + 1

    def _server_properties(self, port: int, controller_port: int) -> str:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{controller_port}",
            "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.home / "data"),
            # One node: every internal topic must fit on it, or transactions and
            # consumer groups never become available.
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "10",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Topics come from the catalog (`cadenza topics create`); a typo must fail, not
            # silently create a one-partition topic.
            "auto.create.topics.enable": "false",
            "num.partitions": "1",
            "num.network.threads": "3",
            "num.io.threads": "4",
            "message.max.bytes": str(8 * 2**20),
            "log.cleaner.backoff.ms": "1000",
            # A deleted topic's files go 1 s after the delete, not 60 s: on this
            # machine's disk, removing a bench namespace's ~160 partitions stalled the
            # broker's appends for tens of milliseconds, in whichever run came next
            # (BENCHMARKS, entry 29).
            "log.segment.delete.delay.ms": "1000",
            "log.retention.check.interval.ms": "60000",
        }
        return "".join(f"{k}={v}\n" for k, v in props.items())

    def _format(self, java: str, jars: Path, properties: Path) -> None:
        cluster_id = _kafka_uuid()
        self._progress(f"formatting KRaft storage in {self.home / 'data'} (cluster {cluster_id})")
        out = subprocess.run(
            [
                java,
                "-cp",
                f"{jars}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                cluster_id,
                "-c",
                str(properties),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "KAFKA_LOG4J_OPTS": ""},
        )
        if out.returncode != 0:
            raise LocalKafkaError(
                f"formatting Kafka storage failed (exit {out.returncode}): "
                f"{(out.stdout + out.stderr).strip()[-2000:]}\nRemove {self.home} to start afresh."
            )

    def _wait_until_up(self, proc: subprocess.Popen[bytes], info: BrokerInfo) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self._state_file.unlink(missing_ok=True)
                raise LocalKafkaError(
                    f"the Kafka broker exited with status {proc.returncode} while starting. "
                    f"Its last log lines:\n{self.log_tail()}"
                )
            if self.answers(timeout=1.0):
                return
            time.sleep(0.1)
        proc.kill()
        self._state_file.unlink(missing_ok=True)
        raise LocalKafkaError(
            f"the Kafka broker did not answer on {info.bootstrap_servers} within "
            f"{_START_TIMEOUT_S:.0f}s. Its last log lines:\n{self.log_tail()}"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of this process counts as gone.
    try:
        status = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return True
    return status != "Z"


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _kafka_uuid() -> str:
    # Kafka cluster ids are 16 random bytes in URL-safe base64 without padding;
    # Kafka itself never hands out one that starts with '-' (it reads as a flag).
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not text.startswith("-"):
            return text
