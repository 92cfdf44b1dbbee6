#!/usr/bin/env bash
# The whole Switchboard test suite, from a fresh checkout: `tests/run.sh` (from any directory).
#
#   setup:  Python venv tests/.venv (from tests/requirements.txt, plus the Python emitter emitter/python
#           installed editable with its zmq and amqp extras), node deps in tests/js (npm ci), node deps in
#           js-client (npm ci; its playwright-core also drives Chromium for tests/django), debug build of
#           the gateway binary (cargo build -p switchboard) and of the shop example the js-client's demo
#           test starts (cargo build -p switchboard-emitter --example shop)
#   tests:  cargo test --workspace, pytest tests/python (Autobahn|Python) and emitter/python/tests (the Python
#           emitter's unit tests, Django integration included), pytest tests/django (a Django project end to
#           end: gateway, ORM and headless Chromium; its own process), npm test in tests/js (Autobahn|JS),
#           npm test in js-client (switchboard.js against the gateway, and in headless Chromium)
#
# Setup failures stop the run; test stages all run and the script exits non-zero if any failed.
# Needs: cargo, python3 (>= 3.11, with venv/ensurepip), node + npm (>= 20) when tests/js exists.
# Env: SWITCHBOARD_BIN (gateway binary the cross-process tests start; default target/debug/switchboard),
#      PYTEST_ADDOPTS (extra pytest arguments), PYTHON (interpreter for the venv; default python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

VENV="$ROOT/tests/.venv"
REQS="$ROOT/tests/requirements.txt"
PYEMIT="$ROOT/emitter/python"
JS_DIR="$ROOT/tests/js"
PYTHON="${PYTHON:-python3}"

failed=()
passed=()

say() { printf '\n==> %s\n' "$*"; }
die() {
    printf '\nrun.sh: FAILED at setup stage: %s\n' "$1" >&2
    exit 1
}

hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

setup_venv() {
    say "setup: Python venv at tests/.venv"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$VENV"
        if ! "$PYTHON" -m venv "$VENV"; then
            echo "cannot create a venv with $PYTHON (on Debian: apt-get install python3-venv)" >&2
            return 1
        fi
    fi
    local want have stamp="$VENV/.requirements.sha256"
    # The emitter is installed editable, so only its packaging (pyproject.toml) calls for a reinstall.
    want="$(hash_of "$REQS" "$PYEMIT/pyproject.toml") $("$VENV/bin/python" -c 'import sys; print(sys.version.split()[0])')" || return 1
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [[ "$want" != "$have" ]]; then
        echo "installing tests/requirements.txt and emitter/python[zmq,amqp]"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQS" || return 1
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$PYEMIT[zmq,amqp]" || return 1
        echo "$want" >"$stamp"
    else
        echo "up to date"
    fi
}

setup_js() {
    say "setup: node dependencies in tests/js"
    local want have stamp="$JS_DIR/node_modules/.switchboard-deps.sha256"
    local lock="$JS_DIR/package-lock.json"
    [[ -f "$lock" ]] || lock="$JS_DIR/package.json"
    want="$(hash_of "$JS_DIR/package.json" "$lock") $(node --version)" || return 1
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [[ "$want" != "$have" ]]; then
        if [[ -f "$JS_DIR/package-lock.json" ]]; then
            (cd "$JS_DIR" && npm ci --no-audit --no-fund --loglevel=error) || return 1
        else
            (cd "$JS_DIR" && npm install --no-audit --no-fund --loglevel=error) || return 1
        fi
        echo "$want" >"$stamp"
    else
        echo "up to date"
    fi
}

setup_js_client() {
    say "setup: node dependencies in js-client"
    local dir="$ROOT/js-client" want have stamp="$ROOT/js-client/node_modules/.switchboard-deps.sha256"
    want="$(hash_of "$dir/package.json" "$dir/package-lock.json") $(node --version)" || return 1
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [[ "$want" != "$have" ]]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || return 1
        echo "$want" >"$stamp"
    else
        echo "up to date"
    fi
}

# run_tests NAME CMD...: runs a test stage, remembers whether it passed
run_tests() {
    local name="$1"
    shift
    say "test: $name"
    local rc=0
    "$@" || rc=$?
    if [[ $rc -eq 0 ]]; then
        passed+=("$name")
    else
        echo "--- stage '$name' FAILED (exit code $rc)" >&2
        failed+=("$name")
    fi
}

# ---------------------------------------------------------------- setup
setup_venv || die "Python venv (tests/.venv, pip install -r tests/requirements.txt)"
if [[ -f "$JS_DIR/package.json" ]]; then
    command -v npm >/dev/null || die "tests/js needs node and npm (>= 20), not found on PATH"
    setup_js || die "node dependencies (npm ci in tests/js)"
fi
if [[ -f "$ROOT/js-client/package.json" ]]; then
    command -v npm >/dev/null || die "js-client needs node and npm (>= 20), not found on PATH"
    setup_js_client || die "node dependencies (npm ci in js-client)"
fi

say "setup: cargo build -p switchboard (debug)"
cargo build -p switchboard || die "cargo build -p switchboard"
say "setup: cargo build -p switchboard-emitter --example shop (debug; js-client/test/demo.test.js starts it)"
cargo build -p switchboard-emitter --example shop || die "cargo build -p switchboard-emitter --example shop"

if [[ -z "${SWITCHBOARD_BIN:-}" ]]; then
    SWITCHBOARD_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/switchboard"
fi
export SWITCHBOARD_BIN
[[ -x "$SWITCHBOARD_BIN" ]] || die "gateway binary not found at $SWITCHBOARD_BIN"

# ---------------------------------------------------------------- tests
run_tests "cargo test --workspace" cargo test --workspace
run_tests "pytest tests/python emitter/python/tests" "$VENV/bin/python" -m pytest tests/python emitter/python/tests
# Django is configured once per process: the Django project's end-to-end test runs in its own.
run_tests "pytest tests/django" "$VENV/bin/python" -m pytest tests/django
if [[ -f "$JS_DIR/package.json" ]]; then
    run_tests "npm test (tests/js)" bash -c 'cd "$1" && npm test' _ "$JS_DIR"
fi
if [[ -f "$ROOT/js-client/package.json" ]]; then
    run_tests "npm test (js-client)" bash -c 'cd "$1" && npm test' _ "$ROOT/js-client"
fi

# ---------------------------------------------------------------- summary
echo
for s in "${passed[@]+"${passed[@]}"}"; do echo "run.sh: ok      $s"; done
for s in "${failed[@]+"${failed[@]}"}"; do echo "run.sh: FAILED  $s"; done
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run.sh: ${#failed[@]} stage(s) failed: ${failed[*]}" >&2
    exit 1
fi
echo "run.sh: all test stages passed"
