"""How many requests of each kind the broker serves per workflow, around one bench run.

    .venv/bin/python scripts/broker_requests.py [--jmx-port 9999] -- \\
        one-activity --rate 20 --duration 20

The broker's CPU follows the number of requests it serves more than the bytes
(each costs a network read, a hand-over to a request thread, metrics, a
response), so this counts them: it turns on the JMX agent of the broker
listening on the bootstrap port (``jcmd <pid> ManagementAgent.start``, local,
no authentication: for a development broker only), reads
``kafka.network:type=RequestMetrics,name=RequestsPerSec`` for every request
type and the appends (``TotalProduceRequestsPerSec``, internal topics and
markers included) before and after ``cadenza bench <args>``, and prints each
count and its share per workflow the run completed in its measured window
(the warm-up's workflows and the harness's own requests, such as reading the
history at the end, are in the counts too: prefer runs of 20 s or more).
Needs the broker on this machine and a JDK (``jcmd``, and ``java`` to run the
small JMX reader below from source). BENCHMARKS.md, entry 36, has its figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cadenza import Settings
from cadenza.bench._harness import _port
from cadenza.bench._procs import find_listener_pid

READER = r"""
import javax.management.*;
import javax.management.remote.*;
import java.util.*;

public class BrokerRequests {
  public static void main(String[] args) throws Exception {
    String url = "service:jmx:rmi:///jndi/rmi://127.0.0.1:" + args[0] + "/jmxrmi";
    try (JMXConnector c = JMXConnectorFactory.connect(new JMXServiceURL(url))) {
      MBeanServerConnection m = c.getMBeanServerConnection();
      TreeMap<String, Long> out = new TreeMap<>();
      ObjectName requests = new ObjectName(
          "kafka.network:type=RequestMetrics,name=RequestsPerSec,*");
      for (ObjectName n : m.queryNames(requests, null)) {
        out.merge(n.getKeyProperty("request"), (Long) m.getAttribute(n, "Count"), Long::sum);
      }
      ObjectName appends = new ObjectName(
          "kafka.server:type=BrokerTopicMetrics,name=TotalProduceRequestsPerSec");
      out.put("(appends)", (Long) m.getAttribute(appends, "Count"));
      StringBuilder json = new StringBuilder("{");
      for (Map.Entry<String, Long> e : out.entrySet()) {
        if (json.length() > 1) json.append(',');
        json.append('"').append(e.getKey()).append("\":").append(e.getValue());
      }
      System.out.println(json.append('}'));
    }
  }
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jmx-port", type=int, default=9999)
    parser.add_argument("bench", nargs=argparse.REMAINDER, help="cadenza bench arguments")
    args = parser.parse_args()
    bench = [a for a in args.bench if a != "--"]
    if not bench:
        parser.error("give the bench run after --, e.g. -- one-activity --rate 20 --duration 20")
    settings = Settings.from_env()
    port = _port(settings.resolved_bootstrap_servers)  # as the bench finds the broker
    pid = find_listener_pid(port)
    if pid is None:
        sys.exit(f"no process of ours listens on {port}: start the broker (cadenza kafka start)")
    for tool in ("jcmd", "java"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is not on PATH: this needs a JDK (the broker's own java will do)")
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "BrokerRequests.java"
        source.write_text(READER)
        before = _read(source, args.jmx_port, pid)
        report_file = Path(tmp) / "bench.json"
        subprocess.run(
            [sys.executable, "-m", "cadenza.cli", "bench", *bench, "--json", str(report_file)],
            check=True,
        )
        after = _read(source, args.jmx_port, pid)
        report = json.loads(report_file.read_text())
    completed = report.get("completed") or 0
    print(f"\nbroker requests during the run ({completed} workflows completed)")
    print(f"  {'request':34s} {'count':>9s} {'per workflow':>13s}")
    for name in sorted(after, key=lambda k: before.get(k, 0) - after[k]):
        count = after[name] - before.get(name, 0)
        if count:
            share = f"{count / completed:13.2f}" if completed else f"{'-':>13s}"
            print(f"  {name:34s} {count:9d} {share}")


def _read(source: Path, jmx_port: int, pid: int) -> dict[str, int]:
    """The broker's request counters, starting its JMX agent on the first call."""
    for attempt in range(2):
        run = subprocess.run(
            ["java", str(source), str(jmx_port)], capture_output=True, text=True, check=False
        )
        if run.returncode == 0:
            counts: dict[str, int] = json.loads(run.stdout)
            return counts
        if attempt == 0:
            subprocess.run(
                [
                    "jcmd",
                    str(pid),
                    "ManagementAgent.start",
                    f"jmxremote.port={jmx_port}",
                    "jmxremote.authenticate=false",
                    "jmxremote.ssl=false",
                ],
                check=True,
                capture_output=True,
            )
    sys.exit(
        f"cannot read the broker's JMX on port {jmx_port}: {run.stderr.strip()[-300:]}; "
        "is another agent on another port? try --jmx-port"
    )


if __name__ == "__main__":
    main()
