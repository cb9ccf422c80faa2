"""A complete Maxwell agent with the SDK: sieve 100 000 numbers per tick, get paid for the primes.

Run it as an agent (`cmd = ["python", "examples/sdk_agent.py"]` in a config's
[[agents]]); the supervisor sets MAXWELL_ENDPOINT and MAXWELL_TOKEN. It says
hello and bids before it loads numpy (through the sieve): an agent that
connects first is heard from its first tick, while its libraries load.
"""

from maxwell.agent import connect

with connect() as agent:
    agent.bid(price=0.2, slots=1)  # credits per core-second, for one slot
    from maxwell.agents.sieve import sieve_segment

    lo = 0
    for _tick in agent.ticks():  # once per supervisor tick, until it hangs up
        hi = lo + 100_000
        agent.report_primes(lo, hi, sieve_segment(lo, hi))
        lo = hi
