"""Prometheus exporter for a live run: `/metrics` on 127.0.0.1 while the supervisor ticks.

Names follow Kepler's and Scaphandre's conventions (`maxwell_node_energy_joules_total`,
`maxwell_agent_cpu_seconds_total{agent}`, …). Physical quantities carry a `source`
label, `measured` or `modelled`, so a dashboard cannot mistake the virtual plant for
a meter. The series are bounded: the agents are fixed when the exporter starts and
rows for any other name are ignored. The exporter keeps its own CollectorRegistry
(never the process-global one) and serves it from prometheus_client's HTTP server
thread; `update` only swaps in the latest values under a lock, so a scrape sees
one whole tick. Touches a TCP port on localhost and nothing else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from maxwell.record.rows import AgentTickRow, TickRow

log = logging.getLogger(__name__)

__all__ = ["MetricsExporter", "source_word"]


def source_word(label: str) -> str:
    """Normalise a source description to the label value: 'measured' or 'modelled'.

    Accepts the words themselves, or a source name: anything naming the model
    ('model', 'model:desktop', 'modelled', …) is modelled, any other sensor name
    (powercap, msr, hwmon, …) is measured.
    """
    word = label.strip().lower()
    return "modelled" if word.startswith("model") else "measured"


class _RunCollector(Collector):
    """Builds the metric families from the latest tick on every scrape."""

    def __init__(self, agents: Sequence[str], energy_source: str, temp_source: str) -> None:
        self.agents = tuple(agents)
        self.energy_source = energy_source
        self.temp_source = temp_source
        self.lock = threading.Lock()
        self.tick: TickRow | None = None
        self.rows: dict[str, AgentTickRow] = {}

    def describe(self) -> Iterator[Metric]:
        # Lets the registry check names at registration without building values.
        return iter(self._families(None, {}))

    def collect(self) -> Iterator[Metric]:
        with self.lock:
            tick, rows = self.tick, dict(self.rows)
        return iter(self._families(tick, rows))

    def _families(self, tick: TickRow | None, rows: dict[str, AgentTickRow]) -> list[Metric]:
        es, ts = [self.energy_source], [self.temp_source]
        energy = CounterMetricFamily(
            "maxwell_node_energy_joules",
            "Energy used by the machine since the run began (J).",
            labels=["source"],
        )
        power = GaugeMetricFamily(
            "maxwell_node_power_watts",
            "Mean machine power over the last tick (W).",
            labels=["source"],
        )
        temp = GaugeMetricFamily(
            "maxwell_die_temperature_celsius", "Die temperature (°C).", labels=["source"]
        )
        price = GaugeMetricFamily(
            "maxwell_reserve_price", "Reserve price of one core-second (credits)."
        )
        busy = GaugeMetricFamily("maxwell_node_busy_cores", "CPU cores busy over the last tick.")
        cpu = CounterMetricFamily(
            "maxwell_agent_cpu_seconds",
            "CPU seconds used by the agent's process tree.",
            labels=["agent"],
        )
        balance = GaugeMetricFamily(
            "maxwell_agent_balance_credits", "Agent wallet (credits).", labels=["agent"]
        )
        freed = CounterMetricFamily(
            "maxwell_agent_bytes_freed", "Bytes of memory the agent released.", labels=["agent"]
        )
        work = CounterMetricFamily(
            "maxwell_agent_work_units", "Verified work units of the agent.", labels=["agent"]
        )
        agent_energy = CounterMetricFamily(
            "maxwell_agent_energy_joules",
            "Dynamic energy attributed to the agent by its CPU share (J).",
            labels=["agent", "source"],
        )
        alive = GaugeMetricFamily(
            "maxwell_agent_alive",
            "1 while the agent lives (running or paused), 0 once dead.",
            labels=["agent"],
        )
        if tick is not None:
            energy.add_metric(es, tick.energy_j)
            power.add_metric(es, tick.power_w)
            temp.add_metric(ts, tick.temp_c)
            price.add_metric([], tick.price)
            busy.add_metric([], tick.busy_cores)
        for name in self.agents:
            row = rows.get(name)
            if row is None:
                continue
            cpu.add_metric([name], row.cpu_s)
            balance.add_metric([name], row.balance)
            freed.add_metric([name], float(row.bytes_freed))
            work.add_metric([name], float(row.work_units))
            agent_energy.add_metric([name, self.energy_source], row.energy_j)
            alive.add_metric([name], 0.0 if row.state == "dead" else 1.0)
        return [energy, power, temp, price, busy, cpu, balance, freed, work, agent_energy, alive]


class MetricsExporter:
    """Serve a run's metrics at http://127.0.0.1:PORT/metrics until `close()`.

    `port` 0 picks a free port (see `.port`). The source labels are 'measured' or
    'modelled' (a source name such as 'model:desktop' or 'powercap' is mapped to them).
    """

    def __init__(
        self,
        port: int,
        agents: Sequence[str],
        energy_source_label: str,
        temp_source_label: str,
        addr: str = "127.0.0.1",
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._collector = _RunCollector(
            agents, source_word(energy_source_label), source_word(temp_source_label)
        )
        self.registry.register(self._collector)
        self._ignored: set[str] = set()
        try:
            self._server, self._thread = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as err:
            raise OSError(
                err.errno,
                f"cannot serve /metrics on {addr}:{port} ({err.strerror}); "
                "choose another --prometheus-port",
            ) from err
        self._closed = False

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host!s}:{self.port}/metrics"

    @property
    def agents(self) -> tuple[str, ...]:
        return self._collector.agents

    def update(self, tick: TickRow, agent_rows: Sequence[AgentTickRow]) -> None:
        """Publish one tick (cumulative rows as recorded); unknown agents are ignored."""
        known = self._collector.agents
        latest: dict[str, AgentTickRow] = {}
        for row in agent_rows:
            if row.agent in known:
                latest[row.agent] = row
            elif row.agent not in self._ignored:
                # The series set is fixed at start so a scrape target stays bounded.
                self._ignored.add(row.agent)
                log.warning("prometheus: agent %r was not known at start; not exported", row.agent)
        with self._collector.lock:
            self._collector.tick = tick
            self._collector.rows.update(latest)

    def close(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
