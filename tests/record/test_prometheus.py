"""The Prometheus exporter serves a recorded run's ticks over HTTP, parseable and bounded."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from maxwell.record import AgentTickRow, RunReader
from maxwell.record.prometheus import MetricsExporter, source_word


def _scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def test_scrape_follows_the_recorded_run(demo_runs: Path) -> None:
    with RunReader(demo_runs / "maxwell") as reader:
        run = reader.run()
        ticks = reader.ticks()
        agents = reader.agents()
        by_t: dict[float, list[AgentTickRow]] = defaultdict(list)
        for row in reader.agent_ticks():
            by_t[row.t_s].append(row)
    energy_word = "measured" if run.energy_measured else "modelled"
    temp_word = "measured" if run.temp_measured else "modelled"
    exporter = MetricsExporter(0, agents, run.energy_source, run.temp_source)
    try:
        assert exporter.url.startswith("http://127.0.0.1:")
        before = _scrape(exporter.url)
        assert not any(name.startswith("maxwell_node") for name, _ in before)  # nothing yet
        last: dict[str, AgentTickRow] = {}
        for i, tick in enumerate(ticks):
            exporter.update(tick, by_t.get(tick.t_s, []))
            last.update({r.agent: r for r in by_t.get(tick.t_s, [])})
            if i not in (0, len(ticks) - 1):
                continue
            m = _scrape(exporter.url)
            es = (("source", energy_word),)
            assert m[("maxwell_node_energy_joules_total", es)] == tick.energy_j
            assert m[("maxwell_node_power_watts", es)] == tick.power_w
            assert m[("maxwell_die_temperature_celsius", (("source", temp_word),))] == tick.temp_c
            assert m[("maxwell_reserve_price", ())] == tick.price
            for name, row in last.items():
                a = (("agent", name),)
                assert m[("maxwell_agent_cpu_seconds_total", a)] == row.cpu_s
                assert m[("maxwell_agent_balance_credits", a)] == row.balance
                assert m[("maxwell_agent_bytes_freed_total", a)] == row.bytes_freed
                assert m[("maxwell_agent_work_units_total", a)] == row.work_units
                key = ("maxwell_agent_energy_joules_total", (("agent", name), *es))
                assert m[key] == row.energy_j
        # an agent that died is still exported, as dead; the living as alive
        for name, row in last.items():
            alive = m[("maxwell_agent_alive", (("agent", name),))]
            assert alive == (0.0 if row.state == "dead" else 1.0)

        # bounded: an agent unknown at start never becomes a series
        stranger = last[agents[0]]._replace(agent="stranger")
        exporter.update(ticks[-1], [stranger])
        m = _scrape(exporter.url)
        labels = {dict(lbl).get("agent") for _, lbl in m} - {None}
        assert labels == set(agents)
        per_agent = [k for k in m if k[0] == "maxwell_agent_cpu_seconds_total"]
        assert len(per_agent) == len(agents)
    finally:
        exporter.close()
    exporter.close()  # idempotent
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(exporter.url, timeout=2)


def test_own_registry_not_the_global_one() -> None:
    from prometheus_client import REGISTRY

    a = MetricsExporter(0, ["x"], "modelled", "modelled")
    b = MetricsExporter(0, ["x"], "powercap", "msr")  # two at once: no duplicate registration
    try:
        assert a.registry is not REGISTRY and b.registry is not a.registry
        assert REGISTRY.get_sample_value("maxwell_reserve_price") is None
        assert a.port != b.port
        with pytest.raises(OSError, match="choose another --prometheus-port"):
            MetricsExporter(a.port, ["x"], "modelled", "modelled")  # port taken
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize(
    ("given", "word"),
    [
        ("measured", "measured"),
        ("modelled", "modelled"),
        ("model:desktop", "modelled"),
        ("model", "modelled"),
        ("powercap", "measured"),
        ("MSR", "measured"),
    ],
)
def test_source_word(given: str, word: str) -> None:
    assert source_word(given) == word


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _try_scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
    try:
        return _scrape(url)
    except (urllib.error.URLError, ConnectionError):
        return None  # not serving yet


@pytest.mark.slow
def test_scrape_a_live_run(tmp_path: Path) -> None:
    """`maxwell run --prometheus-port` serves /metrics while the agents run."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    out = tmp_path / "run"
    argv = [sys.executable, "-m", "maxwell.cli", "run", "--policy", "maxwell"]
    argv += ["--duration", "8", "--out", str(out), "--prometheus-port", str(port), "--json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = None
    try:
        # Poll the live process until it has published a tick with every agent (or ends).
        while proc.poll() is None:
            m = _try_scrape(url)
            if m is not None and any(k[0] == "maxwell_agent_cpu_seconds_total" for k in m):
                seen = m
                break
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.2)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    assert seen is not None, "no scrape succeeded while the run was live"
    assert json.loads(stdout)["policy"] == "maxwell"
    with RunReader(out) as reader:
        run = reader.run()
        ticks = reader.ticks()
        agents = set(reader.agents())
    es = (("source", "measured" if run.energy_measured else "modelled"),)
    energy = seen[("maxwell_node_energy_joules_total", es)]
    # what was served is exactly one of the ticks the run recorded
    tick = next(t for t in ticks if t.energy_j == energy)
    assert seen[("maxwell_reserve_price", ())] == tick.price
    assert seen[("maxwell_node_power_watts", es)] == tick.power_w
    served = {dict(lbl)["agent"] for name, lbl in seen if name == "maxwell_agent_balance_credits"}
    assert served == agents
