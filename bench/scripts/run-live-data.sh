#!/usr/bin/env bash
# The "Live data" measurements of BENCHMARKS.md, against a release gateway pinned to CPU 0 with the
# generator on CPU 1, every run on a freshly started gateway:
#
#   bench/scripts/run-live-data.sh [history|filters|recovery|memory|all]
#
# history:  fanout 5,000 x 1,000 x 200 B, history off (bench.toml) vs on (history.toml), ROUNDS rounds,
#           the order of the two variants alternating from round to round.
# filters:  the same fan-out unfiltered (--kwargs: the same payload) vs --filters 10, alternated likewise.
# recovery: RUNS runs of `recovery` (1,000 events, 200 get_events calls) with limit=1000, then with
#           after_publication=<first> (history.toml).
# memory:   RUNS runs of `history-memory` (100,000 events over 100 topics) with history (memory.toml), and
#           RUNS with the same publishing but no history (bench.toml), the control.
#
# Environment: ROUNDS (5), RUNS (3), OUT (target/live-data), GATEWAY_BIN (default target/release/switchboard),
# BENCH_BIN (default target/release/switchboard-bench). Builds nothing: build both in release first.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-5}
RUNS=${RUNS:-3}
OUT=${OUT:-target/live-data}
WHAT=${1:-all}
BIN=${GATEWAY_BIN:-target/release/switchboard}
BENCH=${BENCH_BIN:-target/release/switchboard-bench}
mkdir -p "$OUT"

REALM='[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]'
printf '[gateway]\nlisten = "127.0.0.1:0"\n%s\n' "$REALM" >"$OUT/bench.toml"
printf '[gateway]\nlisten = "127.0.0.1:0"\n%s\n[[realms.history]]\nuri = "com.switchboard.bench"\nlimit = 1000\n' \
    "$REALM" >"$OUT/history.toml"
printf '[gateway]\nlisten = "127.0.0.1:0"\nhistory_max_bytes = 536870912\n%s\n[[realms.history]]\nuri = "com.switchboard.bench.history."\nmatch = "prefix"\nlimit = 100000\n' \
    "$REALM" >"$OUT/memory.toml"

# shellcheck source=bench/scripts/gateway.sh
. bench/scripts/gateway.sh

# `one NAME CONFIG ARGS...`: one run on a fresh gateway, appended to NAME.jsonl; `@URL@` and `@PID@`
# in ARGS are replaced.
one() {
    local name=$1 config=$2
    shift 2
    start_gateway "$config"
    local args=("${@/#@URL@/$URL}")
    args=("${args[@]/#@PID@/$GATEWAY_PID}")
    echo "# $name, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    taskset -c 1 "$BENCH" --json "${args[@]}" | tee -a "$OUT/$name.jsonl"
    stop_gateway
}

wants() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }
FANOUT=(fanout --url @URL@ --subscribers 5000 --events 1000 --size 200)

if wants history; then
    rm -f "$OUT/history-off.jsonl" "$OUT/history-on.jsonl"
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            one history-off "$OUT/bench.toml" "${FANOUT[@]}"
            one history-on "$OUT/history.toml" "${FANOUT[@]}"
        else
            one history-on "$OUT/history.toml" "${FANOUT[@]}"
            one history-off "$OUT/bench.toml" "${FANOUT[@]}"
        fi
    done
fi
if wants filters; then
    rm -f "$OUT/filters-0.jsonl" "$OUT/filters-10.jsonl"
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then
            one filters-0 "$OUT/bench.toml" "${FANOUT[@]}" --kwargs
            one filters-10 "$OUT/bench.toml" "${FANOUT[@]}" --filters 10
        else
            one filters-10 "$OUT/bench.toml" "${FANOUT[@]}" --filters 10
            one filters-0 "$OUT/bench.toml" "${FANOUT[@]}" --kwargs
        fi
    done
fi
if wants recovery; then
    rm -f "$OUT/recovery-limit.jsonl" "$OUT/recovery-after.jsonl"
    for _ in $(seq "$RUNS"); do
        one recovery-limit "$OUT/history.toml" recovery --url @URL@ --events 1000 --calls 200 --size 200
        one recovery-after "$OUT/history.toml" recovery --url @URL@ --events 1000 --calls 200 --size 200 \
            --after-first
    done
fi
if wants memory; then
    rm -f "$OUT/memory-history.jsonl" "$OUT/memory-control.jsonl"
    for _ in $(seq "$RUNS"); do
        one memory-history "$OUT/memory.toml" history-memory --url @URL@ --pid @PID@ --events 100000 \
            --topics 100 --size 200
        one memory-control "$OUT/bench.toml" history-memory --url @URL@ --pid @PID@ --events 100000 \
            --topics 100 --size 200
    done
fi

# Medians and ranges.
python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
def runs(name):
    path = os.path.join(out, name + ".jsonl")
    return [json.loads(l) for l in open(path) if l.strip()] if os.path.exists(path) else []
def show(label, values, fmt):
    if values:
        print(f"{label}: median {fmt(statistics.median(values))}, range {fmt(min(values))}-{fmt(max(values))}, "
              f"runs {', '.join(fmt(v) for v in values)}")
for name in ["history-off", "history-on", "filters-0", "filters-10"]:
    r = runs(name)
    show(f"{name} deliveries/s (M)", [x["deliveries_per_s"] / 1e6 for x in r], lambda v: f"{v:.2f}")
    show(f"{name} lost", [x["lost"] for x in r], str)
for name in ["recovery-limit", "recovery-after"]:
    r = runs(name)
    for key in ["p50_us", "p99_us", "max_us"]:
        show(f"{name} {key[:-3]} ms", [x["latency"][key] / 1000 for x in r], lambda v: f"{v:.3f}")
        if r and "latency_decoded" in r[0]:
            show(f"{name} {key[:-3]} ms decoded", [x["latency_decoded"][key] / 1000 for x in r],
                 lambda v: f"{v:.3f}")
    show(f"{name} bytes/answer", [x["answer_bytes"] for x in r], str)
for name in ["memory-history", "memory-control"]:
    r = runs(name)
    show(f"{name} bytes/event", [x["bytes_per_event"] for x in r], lambda v: f"{v:.0f}")
    show(f"{name} stored on topic 0", [x["stored_first_topic"] for x in r], str)
PY
