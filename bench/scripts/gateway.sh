# The gateway launcher both benchmark scripts source: start a gateway on a config with port 0 and its
# --ready-file, read the bound addresses, stop it. Needs BIN (the gateway binary) and OUT (a folder).

GATEWAY_PID=
READY="$OUT/ready.json"
# The value of "$1" in the ready file (one JSON object of strings and the pid).
ready_field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" "$READY"; }
# `start_gateway [CONFIG]` (default $CONFIG): starts the gateway pinned to CPU 0 and waits (30 s at most)
# for its ready file; sets GATEWAY_PID, URL (WebSocket), RPC_ADDR and ZMQ_ADDR (HOST:PORT, when the config
# enables them).
start_gateway() {
    rm -f "$READY"
    RUST_LOG=warn taskset -c 0 "$BIN" gateway --config "${1:-$CONFIG}" --ready-file "$READY" \
        2>>"$OUT/gateway.log" &
    GATEWAY_PID=$!
    for _ in $(seq 300); do
        if [ -f "$READY" ]; then
            URL="ws://$(ready_field http)/ws"
            RPC_ADDR=$(ready_field jsonrpc)
            ZMQ_ADDR=$(ready_field zmq)
            ZMQ_ADDR=${ZMQ_ADDR#tcp://}
            return 0
        fi
        if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
            echo "gateway exited before it was ready (see $OUT/gateway.log)" >&2
            exit 1
        fi
        sleep 0.1
    done
    echo "gateway wrote no ready file within 30 s" >&2
    exit 1
}
stop_gateway() {
    if [ -n "$GATEWAY_PID" ]; then
        kill "$GATEWAY_PID" 2>/dev/null || true
        wait "$GATEWAY_PID" 2>/dev/null || true
        GATEWAY_PID=
    fi
}
trap stop_gateway EXIT
