"""Real agent processes against a real Endpoint and Verifier (the supervisor's view)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from agents_harness import PYTHON, REPO, Harness

from maxwell.agents import builtin_argv
from maxwell.agents.protocol import Bid, Gone, Hello, Strike, WorkClaim
from maxwell.agents.verify import DEFAULT_RESIEVE_PROBABILITY


def claims_of(h: Harness, agent: str) -> list[WorkClaim]:
    return [c for c, _ in h.verdicts if c.agent == agent]


@pytest.mark.parametrize(
    ("start", "stop", "pi_difference"),
    [
        (0, 10**7, 664579),  # π(10^7)
        (10**6, 10**7, 664579 - 78498),  # π(10^7) − π(10^6)
    ],
)
def test_scientist_counts_match_pi(
    harness: Harness, start: int, stop: int, pi_difference: int
) -> None:
    proc = harness.spawn(
        "sci",
        builtin_argv(
            "scientist", {"workers": 2, "start": start, "stop": stop, "segment_size": 1_000_000}
        ),
    )
    harness.pump(lambda: proc.poll() is not None and Gone("sci") in harness.records)
    assert proc.returncode == 0
    claims = claims_of(harness, "sci")
    segments = sorted((c.evidence["lo"], c.evidence["hi"]) for c in claims)
    assert segments[0][0] == start and segments[-1][1] == stop
    assert all(a[1] == b[0] for a, b in itertools.pairwise(segments))
    assert all(v.accepted for _, v in harness.verdicts)  # p = 1: every segment re-sieved
    assert harness.accepted_units("sci") == pi_difference


def test_scientist_bids_its_value_capped_by_its_balance(harness: Harness) -> None:
    harness.spawn(
        "sci",
        builtin_argv(
            "scientist", {"workers": 1, "segment_size": 200_000, "initial_bid": 0.5, "margin": 0.8}
        ),
    )

    def bids() -> list[float]:
        return [r.price for r in harness.records if isinstance(r, Bid) and r.agent == "sci"]

    harness.pump(lambda: len(claims_of(harness, "sci")) >= 3)
    assert bids()[0] == 0.5  # before any verdict: the configured initial bid
    # rich: it bids its measured value, bounty × primes per CPU-second × margin, far above 0.5
    n = len(bids())
    harness.pump(lambda: len(bids()) > n + 2)
    assert bids()[-1] > 0.5
    # poor: never more than it can pay for one tick (balance / (slots × tick_s))
    harness.balance["sci"] = 0.01
    cap = 0.01 / (1 * harness.tick_s)
    harness.pump(lambda: abs(bids()[-1] - cap) < 1e-12)


def test_scientist_survives_being_frozen_and_exits_on_hangup(harness: Harness) -> None:
    proc = harness.spawn("sci", builtin_argv("scientist", {"workers": 2, "segment_size": 200_000}))
    harness.pump(lambda: len(claims_of(harness, "sci")) >= 2)
    os.killpg(proc.pid, signal.SIGSTOP)  # what the signals membrane does
    for _ in range(30):
        harness.step()
    os.killpg(proc.pid, signal.SIGCONT)
    n = len(claims_of(harness, "sci"))
    harness.pump(lambda: len(claims_of(harness, "sci")) >= n + 3)
    assert all(v.accepted for _, v in harness.verdicts)
    assert not any(isinstance(r, Strike) for r in harness.records)
    harness.ep.close()
    assert proc.wait(timeout=20) == 0


def test_miner_bids_fixed_claims_unverifiable_and_frees_memory(harness: Harness) -> None:
    chunk = 1 << 20
    proc = harness.spawn(
        "miner",
        builtin_argv(
            "miner",
            {
                "workers": 2,
                "bid": 3.0,
                "slots": 2,
                "churn_bytes_per_s": 32 * chunk,
                "chunk_bytes": chunk,
            },
        ),
    )
    from maxwell.memtrace import open_tracer

    tracer = open_tracer("auto")
    try:
        print(f"memtrace backend: {tracer.label} ({tracer.source})")
        tracer.add("miner", None, proc.pid)
        harness.pump(lambda: len(claims_of(harness, "miner")) >= 3)
        import psutil

        def freed() -> int:
            try:
                kids = [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
            except psutil.NoSuchProcess:
                kids = []
            return tracer.read({"miner": [proc.pid, *kids]}).get("miner", 0)

        harness.pump(lambda: freed() >= 4 * chunk)
    finally:
        tracer.close()
    bids = [r for r in harness.records if isinstance(r, Bid) and r.agent == "miner"]
    assert bids and all((b.price, b.slots) == (3.0, 2) for b in bids)
    verdicts = [v for c, v in harness.verdicts if c.agent == "miner"]
    assert all(c.kind == "hash" and c.units > 0 for c in claims_of(harness, "miner"))
    assert all(not v.accepted and not v.fraud and v.units == 0 for v in verdicts)


def _earns(harness: Harness, name: str, argv: list[str]) -> None:
    harness.spawn(name, argv)
    harness.pump(lambda: sum(1 for c, v in harness.verdicts if c.agent == name and v.accepted) >= 3)
    assert Hello(name) in harness.records
    assert not any(isinstance(r, Strike) for r in harness.records)
    assert all(v.accepted for c, v in harness.verdicts if c.agent == name)


def test_sdk_example_earns_bounties(harness: Harness) -> None:
    _earns(harness, "sdk", [PYTHON, str(REPO / "examples" / "sdk_agent.py")])


def test_plain_socket_example_earns_bounties(harness: Harness) -> None:
    _earns(harness, "raw", [PYTHON, str(REPO / "examples" / "raw_socket_agent.py")])


@pytest.mark.skipif(
    shutil.which("socat") is None or shutil.which("factor") is None,
    reason="socat or coreutils factor not installed (apt-get install socat)",
)
def test_socat_shell_example_earns_bounties(harness: Harness) -> None:
    _earns(harness, "shell", ["bash", str(REPO / "examples" / "socat_agent.sh")])


def test_lying_agent_is_caught_at_default_p(make_harness: object, tmp_path: Path) -> None:
    """Detection rate of a liar inflating every count by one, at the default p."""
    p = DEFAULT_RESIEVE_PROBABILITY
    h = make_harness(resieve_probability=p, seed=2026)  # type: ignore[operator]
    claims = 1000
    proc = h.spawn(
        "liar", [PYTHON, str(Path(__file__).with_name("liar_agent.py")), str(claims), "5000", "1"]
    )
    h.pump(lambda: proc.poll() is not None, timeout_s=60)
    assert proc.returncode == 0, h.log("liar")
    summary = json.loads(h.log("liar").strip().splitlines()[-1])
    frauds = [v for c, v in h.verdicts if c.agent == "liar" and v.fraud]
    assert summary["fraud"] == len(frauds) > 0  # the liar was told: forfeited and fined
    assert all("re-sieved" in v.reason for v in frauds)
    # The first catch is a draw at p; after it every claim is audited (probation), so a
    # liar that keeps lying is caught on every claim from then on.
    mine = [v for c, v in h.verdicts if c.agent == "liar"]
    first = next(i for i, v in enumerate(mine) if v.fraud)
    assert all(v.fraud for v in mine[first:])
    assert first < 4 / p  # caught within a few expected waits
    print(f"liar first caught at claim {first} (p={p}); {len(frauds)} of {claims} caught")
