"""Hostile client for the fuzz test: throws random and malicious lines at an Endpoint.

python hostile_client.py SOCKET MALLORY_TOKEN SEED LINES — opens connection after
connection (anonymous ones, and ones authenticated with Mallory's own token) and
sends LINES newline-terminated lines in all: random bytes, truncated and
mistyped JSON, wrong tokens, unknown types, huge lines, deep nesting, NaN and
giant numbers, invalid UTF-8, hostile work evidence, floods, half lines, idle
sockets. Never reads replies. Prints a JSON summary on exit.
"""

from __future__ import annotations

import json
import random
import socket
import sys

path, mallory, seed, target = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(seed)

VALID = [
    {"type": "bid", "price": 1.0, "slots": 1},
    {"type": "work", "kind": "primes", "units": 25, "evidence": {"lo": 0, "hi": 100,
                                                                   "sample": [2, 97]}},
    {"type": "work", "kind": "hash", "units": 10},
    {"type": "hello", "token": mallory, "protocol": 1},
]
HOSTILE_VALUES = [None, True, -1, 0, 2**64, -(2**63), 1.5, 1e308, "x", "", [], {}, [1, 2],
                  {"a": 1}, "\u0000", "\ud800", 10**300]


def mutate(msg: dict[str, object]) -> dict[str, object]:
    out = dict(msg)
    for _ in range(rng.randint(1, 3)):
        key = rng.choice([*out.keys(), "type", "price", "slots", "units", "evidence", "lo", "id"])
        out[key] = rng.choice(HOSTILE_VALUES)
    return out


def garbage() -> bytes:
    k = rng.random()
    if k < 0.15:
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 200)))
    if k < 0.30:
        s = json.dumps(rng.choice(VALID))
        return s[: rng.randint(0, len(s) - 1)].encode()  # truncated
    if k < 0.45:
        return json.dumps(mutate(rng.choice(VALID)), allow_nan=True).encode(errors="surrogatepass")
    if k < 0.55:
        return json.dumps({"type": "hello", "token": f"{rng.getrandbits(128):032x}",
                           "protocol": rng.choice([1, 2, "1", None])}).encode()
    if k < 0.62:
        return json.dumps({"type": rng.choice(["welcome", "tick", "verdict", "x" * 100, "BID"]),
                           "price": 1}).encode()
    if k < 0.68:
        d = rng.randint(10, 50_000)
        return b"[" * d + b"]" * rng.choice([0, d])
    if k < 0.74:
        return rng.choice([b'{"type":"bid","price":NaN}', b'{"type":"bid","price":Infinity}',
                           b'{"type":"bid","price":1e999}', b'{"type":"work","kind":"primes",'
                           b'"units":' + b"9" * 5000 + b"}", b'{"type":"bid","price":-0.0}'])
    if k < 0.80:
        return b"\xc3\x28\xa0\xa1\xe2\x28\xa1\xf0\x28\x8c\xbc" * rng.randint(1, 50)
    if k < 0.90:
        ev = {"lo": rng.choice(HOSTILE_VALUES), "hi": rng.choice(HOSTILE_VALUES),
              "sample": [rng.choice(HOSTILE_VALUES) for _ in range(rng.randint(0, 70))]}
        return json.dumps({"type": "work", "kind": "primes",
                           "units": rng.randint(0, 10**6), "evidence": ev},
                          allow_nan=True).encode(errors="surrogatepass")
    return json.dumps(rng.choice(VALID)).encode()


sent = 0
stats = {"connections": 0, "send_errors": 0, "huge": 0, "floods": 0, "half": 0, "idle": 0}
while sent < target:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
    except OSError:
        s.close()
        continue
    stats["connections"] += 1
    s.settimeout(5.0)
    kind = rng.random()
    lines: list[bytes] = []
    if kind < 0.25:  # Mallory, with a real token, misbehaving
        lines = [json.dumps(VALID[3]).encode()] + [garbage() for _ in range(rng.randint(1, 30))]
    elif kind < 0.30:  # flood of one line
        stats["floods"] += 1
        lines = [garbage()] * rng.randint(100, 2000)
    elif kind < 0.31:  # a huge line, up to 1 MiB
        stats["huge"] += 1
        lines = [bytes(rng.getrandbits(8) for _ in range(64)) * rng.randint(1024, 16384)]
    elif kind < 0.33:  # idle: connect and leave
        stats["idle"] += 1
    else:
        lines = [garbage() for _ in range(rng.randint(1, 30))]
    data = b"".join(line.replace(b"\n", b" ") + b"\n" for line in lines)
    if kind > 0.97:  # hang up in the middle of a line
        stats["half"] += 1
        data += b'{"type":"bid","pri'
    try:
        s.sendall(data)
        sent += len(lines)
    except OSError:
        stats["send_errors"] += 1
    s.close()
print(json.dumps({"lines": sent, **stats}), flush=True)
