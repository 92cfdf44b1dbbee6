#!/usr/bin/env bash
# The "Cluster (#14)" measurements of BENCHMARKS.md: release gateways pinned to CPU 0, the generator on
# CPU 1, RabbitMQ (127.0.0.1:5672, guest/guest, not pinned) shared; every run on fresh gateways and a
# fresh stream, deleted afterwards. ROUNDS rounds, the variants alternating within each round:
#
#   one     one gateway, no [cluster]
#   solo    one gateway with [cluster] (a one-node cluster: every event goes through the stream)
#   two     two nodes; the publisher on node 1, the subscribers spread over nodes 1 and 2
#   three   three nodes; the publisher on node 1, the subscribers spread over nodes 1, 2 and 3
#
# Per variant: `fanout` (FANOUT_ARGS) and `latency` (LATENCY_ARGS; in `two` and `three` every subscriber
# is on node 2, so each latency sample crosses the stream from node 1 to node 2); `rpc` (RPC_ARGS: calls/s
# with several calls in flight) and `rpc1` (RPC1_ARGS: one call at a time, the round trip); in `two` and
# `three` the callers are on node 2 and the callee on node 1, so every call crosses nodes.
# SCENARIOS picks among them (default: fanout latency rpc rpc1).
#
#   bench/scripts/run-cluster.sh [one two three solo ...]
#
# Environment: ROUNDS (3), OUT (target/cluster-bench), GATEWAY_BIN (target/release/switchboard),
# BENCH_BIN (target/release/switchboard-bench), AMQP_URL, FANOUT_ARGS, LATENCY_ARGS, RPC_ARGS, RPC1_ARGS,
# SCENARIOS. Builds nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3}
OUT=${OUT:-target/cluster-bench}
BIN=${GATEWAY_BIN:-target/release/switchboard}
BENCH=${BENCH_BIN:-target/release/switchboard-bench}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
read -r -a FANOUT_ARGS <<<"${FANOUT_ARGS:---subscribers 1000 --events 5000 --size 200}"
read -r -a LATENCY_ARGS <<<"${LATENCY_ARGS:---subscribers 100 --rate 500 --duration-s 10 --size 200}"
read -r -a RPC_ARGS <<<"${RPC_ARGS:---callers 10 --calls 2000 --in-flight 10 --size 100}"
read -r -a RPC1_ARGS <<<"${RPC1_ARGS:---callers 1 --calls 2000 --in-flight 1 --size 100}"
read -r -a SCENARIOS <<<"${SCENARIOS:-fanout latency rpc rpc1}"
VARIANTS=("$@")
[ ${#VARIANTS[@]} -gt 0 ] || VARIANTS=(one solo two three)
mkdir -p "$OUT"

PIDS=()
URLS=()
STREAM=
stop_all() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
    URLS=()
    if [ -n "$STREAM" ]; then
        rabbitmqctl -q delete_queue "$STREAM" >/dev/null 2>&1 || true
        STREAM=
    fi
}
trap stop_all EXIT

# `start NODES CLUSTER`: NODES gateways pinned to CPU 0, with a [cluster] on one fresh stream when CLUSTER
# is 1; sets PIDS and URLS.
start() {
    local nodes=$1 cluster=$2 unique n
    unique="$(date +%s%N)-$$"
    [ "$cluster" = 1 ] && STREAM="sbbench.cluster.$unique"
    for n in $(seq "$nodes"); do
        local dir="$OUT/node$n"
        mkdir -p "$dir"
        rm -f "$dir/ready.json"
        {
            printf '[gateway]\nlisten = "127.0.0.1:0"\noutbound_queue = 4096\n'
            printf '[[realms]]\nname = "realm1"\nanonymous_role = "anonymous"\n[[realms.roles]]\nname = "anonymous"\n'
            printf 'permissions = [{ uri = "", match = "prefix", allow = { subscribe = true, publish = true, call = true, register = true } }]\n'
            if [ "$cluster" = 1 ]; then
                printf '[cluster]\namqp_url = "%s"\nstream = "%s"\nnode = "n%s-%s"\n' "$AMQP_URL" "$STREAM" "$n" "$unique"
            fi
        } >"$dir/gateway.toml"
        RUST_LOG=warn taskset -c 0 "$BIN" gateway --config "$dir/gateway.toml" --ready-file "$dir/ready.json" \
            2>>"$dir/gateway.log" &
        PIDS+=($!)
        local ok=
        for _ in $(seq 300); do
            if [ -f "$dir/ready.json" ]; then
                ok=1
                break
            fi
            sleep 0.1
        done
        [ -n "$ok" ] || { echo "node $n wrote no ready file (see $dir/gateway.log)" >&2; exit 1; }
        URLS+=("ws://$(sed -n 's/.*"http": *"\([^"]*\)".*/\1/p' "$dir/ready.json")/ws")
    done
}

run() {
    local variant=$1 name=$2
    shift 2
    echo "# $variant $name, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
    taskset -c 1 "$BENCH" --json "$@" | sed "s/^{/{\"variant\":\"$variant\",/" | tee -a "$OUT/$name.jsonl"
}

for round in $(seq "$ROUNDS"); do
    for variant in "${VARIANTS[@]}"; do
        case $variant in
            one) start 1 0 ;;
            solo) start 1 1 ;;
            two) start 2 1 ;;
            three) start 3 1 ;;
            *) echo "unknown variant $variant" >&2; exit 2 ;;
        esac
        spread=()
        for url in "${URLS[@]:1}"; do spread+=(--spread-url "$url"); done
        # Subscribers and callers on node 2 when there is one; the publisher and the callee on node 1.
        near=${URLS[1]:-${URLS[0]}}
        for scenario in "${SCENARIOS[@]}"; do
            case $scenario in
                fanout) run "$variant" fanout fanout --url "${URLS[0]}" "${spread[@]}" "${FANOUT_ARGS[@]}" ;;
                latency) run "$variant" latency latency --url "$near" --publish-url "${URLS[0]}" "${LATENCY_ARGS[@]}" ;;
                rpc) run "$variant" rpc rpc --url "$near" --callee-url "${URLS[0]}" "${RPC_ARGS[@]}" ;;
                rpc1) run "$variant" rpc1 rpc --url "$near" --callee-url "${URLS[0]}" "${RPC1_ARGS[@]}" ;;
                *) echo "unknown scenario $scenario" >&2; exit 2 ;;
            esac
        done
        stop_all
    done
    echo "# round $round done" >&2
done
