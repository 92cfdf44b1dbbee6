#!/usr/bin/env bash
# Runs the BENCHMARKS.md scenarios against a release gateway pinned to CPU 0, with the generator on CPU 1.
# Each scenario runs RUNS times (default 3) on a freshly started gateway; every run prints one JSON line.
#
#   bench/scripts/run-benchmarks.sh [fanout|idle|latency|ingest|all|soak|transports|churn|longpoll]
#
# `transports` (not part of `all`) alternates WebSocket and RawSocket runs (fresh gateway each) of the
# fan-out (2,000 and 5,000 subscribers) and of idle memory; `churn` (not part of `all`) alternates churn
# runs (20,000 sessions, 50 at a time) without and with a meta subscriber; `longpoll` (not part of `all`)
# alternates long-poll fan-out runs (1,000 sessions x 200 events) in wamp.2.json and wamp.2.json.batched,
# then measures memory per idle long-poll session (5,000 sessions, one receive pending each).
#
# `soak` (not part of `all`) runs once for SOAK_DURATION_S seconds (default 600): continuous publishing,
# connection churn and stalled consumers, sampling the gateway's RSS; extra `switchboard-bench soak`
# options can be given in SOAK_ARGS (e.g. SOAK_ARGS="--stalled 50 --rate 500").
#
# Every gateway listens on ports the OS chooses (port 0; PORT pins the HTTP one) and writes them to its
# --ready-file, which the script waits for (with a deadline) and reads the addresses from.
#
# `ingest` starts the gateway with [security], [ingest.jsonrpc], [ingest.zmq] and [ingest.amqp]
# (RabbitMQ at AMQP_URL, exchange/queue switchboard.bench.*, deleted afterwards with rabbitmqctl when
# present) and runs jsonrpc, jsonrpc-batch, zmq and amqp RUNS times each.
#
# Environment: PORT (default 0: the OS chooses), RUNS (3), OUT (target/bench-results), GATEWAY_BIN (a prebuilt
# gateway to measure instead of building target/release/switchboard from this tree), AMQP_URL
# (amqp://guest:guest@127.0.0.1:5672/%2f).
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT=${PORT:-0}
RUNS=${RUNS:-3}
OUT=${OUT:-target/bench-results}
WHAT=${1:-all}
BIN=${GATEWAY_BIN:-target/release/switchboard}
BENCH=target/release/switchboard-bench
mkdir -p "$OUT"

if [ -n "${GATEWAY_BIN:-}" ]; then
    cargo build --release -p switchboard-bench
else
    cargo build --release -p switchboard -p switchboard-bench
fi

cat > "$OUT/bench.toml" <<TOML
[gateway]
listen = "127.0.0.1:$PORT"
[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]
TOML

SECRET="bench-secret-$RANDOM$RANDOM"
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
EXCHANGE=switchboard.bench.events
QUEUE=switchboard.bench.ingest
# One subscriber takes a burst of up to 50,000 events: its outbox must hold a burst that the ingestion
# side produces faster than the writer sends (BENCHMARKS.md, Ingestion), or the gateway closes it as a
# slow consumer (it never drops events from an open session).
cat > "$OUT/ingest.toml" <<TOML
[gateway]
listen = "127.0.0.1:$PORT"
outbound_queue_bytes = 67108864
[security]
secret = "$SECRET"
[ingest.jsonrpc]
listen = "127.0.0.1:0"
[ingest.zmq]
endpoint = "tcp://127.0.0.1:0"
[ingest.amqp]
url = "$AMQP_URL"
exchange = "$EXCHANGE"
queue = "$QUEUE"
[[realms]]
name = "realm1"
anonymous_role = "anonymous"
[[realms.roles]]
name = "anonymous"
permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]
TOML

CONFIG="$OUT/bench.toml"
# shellcheck source=bench/scripts/gateway.sh
. bench/scripts/gateway.sh

# `run NAME ARGS...`: RUNS runs on fresh gateways; an argument `@URL@` is replaced by that run's URL.
run() {
    local name=$1
    shift
    rm -f "$OUT/$name.jsonl"
    for i in $(seq "$RUNS"); do
        start_gateway
        echo "# $name run $i, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        taskset -c 1 "$BENCH" --json "${@/#@URL@/$URL}" | tee -a "$OUT/$name.jsonl"
        stop_gateway
    done
}

wants() { [ "$WHAT" = all ] || [ "$WHAT" = "$1" ]; }

if wants fanout; then
    run fanout fanout --url @URL@ --subscribers 5000 --events 1000 --size 200
fi
if wants latency; then
    run latency latency --url @URL@ --subscribers 1000 --rate 500 --duration-s 10 --size 200
fi
if wants idle; then
    rm -f "$OUT/idle.jsonl"
    for i in $(seq "$RUNS"); do
        start_gateway
        echo "# idle run $i, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        taskset -c 1 "$BENCH" --json idle --url "$URL" --connections 10000 --pid "$GATEWAY_PID" |
            tee -a "$OUT/idle.jsonl"
        stop_gateway
    done
fi

if [ "$WHAT" = soak ]; then
    start_gateway
    echo "# soak for ${SOAK_DURATION_S:-600} s, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    # shellcheck disable=SC2086 # SOAK_ARGS is a list of options
    taskset -c 1 "$BENCH" --json soak --url "$URL" --pid "$GATEWAY_PID" \
        --duration-s "${SOAK_DURATION_S:-600}" ${SOAK_ARGS:-} | tee "$OUT/soak.jsonl"
    echo "# soak done, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    stop_gateway
fi

# `pair NAME VARIANT ARGS...`: like `run` but appends to NAME.jsonl without clearing it (the caller
# clears it and alternates VARIANTs); `@PID@` is replaced by the gateway's pid.
pair() {
    local name=$1 variant=$2
    shift 2
    start_gateway
    echo "# $name $variant, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    local args=("${@/#@URL@/$URL}")
    taskset -c 1 "$BENCH" --json "${args[@]/#@PID@/$GATEWAY_PID}" | tee -a "$OUT/$name.jsonl"
    stop_gateway
}

if [ "$WHAT" = transports ]; then
    for subscribers in 2000 5000; do
        rm -f "$OUT/fanout-transports-$subscribers.jsonl"
        for i in $(seq "$RUNS"); do
            for transport in websocket rawsocket; do
                pair "fanout-transports-$subscribers" "$transport run $i" fanout --url @URL@ \
                    --transport "$transport" --subscribers "$subscribers" --events 1000 --size 200 \
                    --pid @PID@
            done
        done
    done
    rm -f "$OUT/idle-transports.jsonl"
    for i in $(seq "$RUNS"); do
        for transport in websocket rawsocket; do
            pair idle-transports "$transport run $i" idle --url @URL@ --transport "$transport" \
                --connections 10000 --pid @PID@
        done
    done
fi

if [ "$WHAT" = churn ]; then
    rm -f "$OUT/churn.jsonl"
    for i in $(seq "$RUNS"); do
        for meta in "" --meta-subscriber; do
            # shellcheck disable=SC2086 # $meta is one option or none
            pair churn "${meta:-no meta} run $i" churn --url @URL@ --connections 20000 \
                --concurrency 50 --pid @PID@ $meta
        done
    done
fi

if [ "$WHAT" = longpoll ]; then
    rm -f "$OUT/longpoll.jsonl" "$OUT/longpoll-idle.jsonl"
    for i in $(seq "$RUNS"); do
        for batched in "" --batched; do
            # shellcheck disable=SC2086 # $batched is one option or none
            pair longpoll "${batched:-unbatched} run $i" longpoll --url @URL@ --sessions 1000 \
                --events 200 --size 200 --pid @PID@ $batched
        done
    done
    for i in $(seq "$RUNS"); do
        pair longpoll-idle "run $i" longpoll --url @URL@ --sessions 5000 --events 0 --pid @PID@
    done
fi

if wants ingest; then
    CONFIG="$OUT/ingest.toml"
    # transport, events (fewer for the slow ones, so that a run stays well under 30 s)
    for spec in jsonrpc:10000 jsonrpc-batch:50000 zmq:50000 amqp:20000; do
        transport=${spec%%:*}
        events=${spec##*:}
        rm -f "$OUT/ingest-$transport.jsonl"
        for i in $(seq "$RUNS"); do
            start_gateway
            echo "# ingest $transport run $i, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
            taskset -c 1 "$BENCH" --json ingest --url "$URL" --transport "$transport" \
                --events "$events" --size 200 --secret "$SECRET" --pid "$GATEWAY_PID" \
                --ingest "$([ "$transport" = zmq ] && echo "$ZMQ_ADDR" || echo "$RPC_ADDR")" \
                --amqp-url "$AMQP_URL" --exchange "$EXCHANGE" --queue "$QUEUE" --timeout-s 30 |
                tee -a "$OUT/ingest-$transport.jsonl"
            stop_gateway
        done
    done
    if command -v rabbitmqctl >/dev/null; then
        for queue in "$QUEUE" "$QUEUE.dead-letter"; do
            timeout 60 rabbitmqctl delete_queue "$queue" >/dev/null 2>&1 || true
        done
    fi
    CONFIG="$OUT/bench.toml"
fi

# Medians of the runs (what BENCHMARKS.md records).
if command -v python3 >/dev/null; then
    python3 - "$OUT" <<'PY'
import json, os, statistics, sys
out = sys.argv[1]
def median(name, key):
    path = os.path.join(out, name + ".jsonl")
    if not os.path.exists(path):
        return None
    runs = [json.loads(line) for line in open(path) if line.strip()]
    values = [key(r) for r in runs]
    return statistics.median(values), values
for name, label, key in [
    ("fanout", "fanout deliveries/s", lambda r: r["deliveries_per_s"]),
    ("fanout", "fanout lost", lambda r: r["lost"]),
    ("idle", "idle bytes/connection", lambda r: r["bytes_per_connection"]),
    ("latency", "latency p50 ms", lambda r: r["latency"]["p50_us"] / 1000),
    ("latency", "latency p99 ms", lambda r: r["latency"]["p99_us"] / 1000),
    ("latency", "latency lost", lambda r: r["lost"]),
    ("soak", "soak RSS first third MiB", lambda r: r["rss_first_third_kib"] / 1024),
    ("soak", "soak RSS last third MiB", lambda r: r["rss_last_third_kib"] / 1024),
    ("soak", "soak RSS growth %", lambda r: r["rss_growth_pct"]),
    ("soak", "soak stalled closed by gateway", lambda r: r["stalled_closed_by_gateway"]),
] + [
    (f"ingest-{t}", f"ingest {t} {label}", key)
    for t in ["jsonrpc", "jsonrpc-batch", "zmq", "amqp"]
    for label, key in [
        ("events/s", lambda r: r["events_per_s"]),
        ("lost", lambda r: r["lost"]),
        ("p50 ms", lambda r: r["latency"]["p50_us"] / 1000 if r["latency"] else float("nan")),
        ("p99 ms", lambda r: r["latency"]["p99_us"] / 1000 if r["latency"] else float("nan")),
        ("gateway CPU %", lambda r: 100 * (r["gateway_cpu_s"] or 0) / max(r["elapsed_s"], 1e-9)),
        ("bench CPU %", lambda r: 100 * r["bench_cpu_s"] / max(r["elapsed_s"], 1e-9)),
    ]
]:
    result = median(name, key)
    if result:
        print(f"{label:34} median {result[0]:.3f}  runs {[round(v, 3) for v in result[1]]}")
# The alternated runs, grouped by variant: median and quartiles.
def grouped(name, variant, key, label):
    path = os.path.join(out, name + ".jsonl")
    if not os.path.exists(path):
        return
    groups = {}
    for line in open(path):
        if line.strip():
            run = json.loads(line)
            groups.setdefault(variant(run), []).append(key(run))
    for group, values in sorted(groups.items()):
        q = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        print(f"{label} {group:28} median {statistics.median(values):.1f}  "
              f"quartiles {q[0]:.1f}..{q[2]:.1f}  runs {[round(v, 1) for v in values]}")
for n in (2000, 5000):
    grouped(f"fanout-transports-{n}", lambda r: r["transport"], lambda r: r["deliveries_per_s"],
            f"fanout {n} deliveries/s")
    grouped(f"fanout-transports-{n}", lambda r: r["transport"], lambda r: r["lost"], f"fanout {n} lost")
grouped("idle-transports", lambda r: r["transport"], lambda r: r["bytes_per_connection"],
        "idle bytes/connection")
grouped("churn", lambda r: "meta" if r["meta_subscriber"] else "no meta",
        lambda r: r["connections_per_s"], "churn connections/s")
grouped("churn", lambda r: "meta" if r["meta_subscriber"] else "no meta",
        lambda r: r["meta_on_join"] + r["meta_on_leave"] - r["meta_expected"], "churn meta missing(-)")
grouped("longpoll", lambda r: r["protocol"], lambda r: r["deliveries_per_s"], "longpoll deliveries/s")
grouped("longpoll", lambda r: r["protocol"], lambda r: r["expected"] - r["delivered"], "longpoll lost")
grouped("longpoll-idle", lambda r: r["protocol"], lambda r: r["bytes_per_session"],
        "longpoll idle bytes/session")
PY
fi
