"""A Maxwell agent in plain Python, without the SDK: the protocol stands alone.

Speaks newline-delimited JSON on the Unix socket named by MAXWELL_ENDPOINT: says
hello with MAXWELL_TOKEN, bids, and on every tick claims the primes of the next
10 000 numbers (found by trial division: slow, honest, verifiable). Standard
library only, so the same logic ports to any language with sockets and JSON.
"""

import json
import os
import socket


def primes_in(lo, hi):
    return [n for n in range(max(lo, 2), hi) if all(n % d for d in range(2, int(n**0.5) + 1))]


sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(os.environ["MAXWELL_ENDPOINT"])
lines = sock.makefile("r", encoding="utf-8")


def send(message):
    sock.sendall((json.dumps(message) + "\n").encode())


send({"type": "hello", "token": os.environ["MAXWELL_TOKEN"], "protocol": 1})
welcome = json.loads(lines.readline())
assert welcome["type"] == "welcome", welcome
send({"type": "bid", "price": 0.1, "slots": 1})

lo = 0
for line in lines:  # ends when the supervisor closes the connection
    message = json.loads(line)
    if message["type"] == "tick":
        hi = lo + 10_000
        found = primes_in(lo, hi)
        sample = found[:: max(1, len(found) // 8)][:8]
        send({"type": "work", "kind": "primes", "units": len(found),
              "evidence": {"lo": lo, "hi": hi, "sample": sample}})
        lo = hi
    elif message["type"] in ("verdict", "error"):
        print(message, flush=True)
