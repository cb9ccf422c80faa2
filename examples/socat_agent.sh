#!/usr/bin/env bash
# A Maxwell agent in shell: socat carries the protocol, coreutils' `factor` finds primes.
#
# Run as an agent (cmd = ["bash", "examples/socat_agent.sh"]); the supervisor sets
# MAXWELL_ENDPOINT and MAXWELL_TOKEN. On each tick it claims the primes of the next
# 1000 numbers. Needs bash, socat and coreutils.
set -euo pipefail

coproc MAXWELL { socat - "UNIX-CONNECT:${MAXWELL_ENDPOINT}"; }
send() { printf '%s\n' "$1" >&"${MAXWELL[1]}"; }

send "{\"type\":\"hello\",\"token\":\"${MAXWELL_TOKEN}\",\"protocol\":1}"
send '{"type":"bid","price":0.1,"slots":1}'

lo=0
while IFS= read -r line <&"${MAXWELL[0]}"; do
    echo "supervisor: $line" >&2
    case "$line" in
    *'"type":"tick"'*)
        hi=$((lo + 1000))
        # primes in [lo, hi): numbers whose factorisation is themselves
        primes=$(seq "$((lo > 2 ? lo : 2))" "$((hi - 1))" | factor | awk 'NF == 2 { print $2 }')
        count=$(printf '%s\n' "$primes" | grep -c . || true)
        sample=$(printf '%s\n' "$primes" | awk 'NR % 25 == 1' | paste -sd, -)
        send "{\"type\":\"work\",\"kind\":\"primes\",\"units\":${count},\"evidence\":{\"lo\":${lo},\"hi\":${hi},\"sample\":[${sample}]}}"
        lo=$hi
        ;;
    esac
done
