"""The JSON-RPC transport against a tiny local http.server playing the gateway: signed bodies, publish and
publish_batch shapes, management calls, error answers as Rejected, and Unreachable after retries."""

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from switchboard_emitter import Emitter, Event, Invalid, Receipt, Rejected, Unreachable, Verifier

SECRET = "unit-test-secret"


class FakeGateway:
    """Answers each JSON-RPC request with `respond(method, params)` (a result, or ("error", {...}), or
    ("http", status, body)); records (signature header, body) of every request."""

    def __init__(self, respond):
        self.requests = []
        self.verifier = Verifier(SECRET)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("X-Switchboard-Signature")
                outer.requests.append((header, body))
                outer.verifier.verify(header, body)  # raises (and the test fails) on a bad signature
                request = json.loads(body)
                answer = respond(request["method"], request.get("params"))
                status = 200
                if isinstance(answer, tuple) and answer[0] == "http":
                    _, status, payload = answer
                elif isinstance(answer, tuple) and answer[0] == "error":
                    payload = {"jsonrpc": "2.0", "id": request["id"], "error": answer[1]}
                else:
                    payload = {"jsonrpc": "2.0", "id": request["id"], "result": answer}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def bodies(self):
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    gateways = []

    def start(respond):
        gateway = FakeGateway(respond)
        gateways.append(gateway)
        return gateway, Emitter(SECRET, jsonrpc_url=gateway.url, timeout=5, retries=1)

    yield start
    for gateway in gateways:
        gateway.close()


def test_publish_sends_the_event_as_params_signed_with_an_auto_id(fake):
    gateway, emitter = fake(lambda method, params: {"publication": 77})
    receipt = emitter.publish("chat.room", ["hi"], {"who": "ü"}, eligible_authid=["alice"])
    assert receipt == Receipt(77)
    (request,) = gateway.bodies()
    assert request["method"] == "publish" and request["jsonrpc"] == "2.0"
    params = request["params"]
    assert params["topic"] == "chat.room" and params["args"] == ["hi"] and params["kwargs"] == {"who": "ü"}
    assert params["options"] == {"eligible_authid": ["alice"]}
    assert params["id"].startswith("e-") and len(params["id"]) == 34
    assert emitter.publish(Event("a.b", id="mine")).publication == 77
    assert gateway.bodies()[1]["params"] == {"topic": "a.b", "id": "mine"}


def test_model_calls_send_the_documented_kwargs(fake):
    gateway, emitter = fake(lambda method, params: {"publication": 1})
    orders = emitter.model("shop.order")
    orders.created(1, {"a": 1, "b": 2})
    orders.updated(1, {"a": 3, "b": 2}, ["a"])
    orders.deleted(1, realm="realm1")
    orders.sync([(1, {"a": 3}), (2, {"pk": 9, "a": 4})])
    kwargs = [request["params"]["kwargs"] for request in gateway.bodies()]
    assert kwargs == [
        {"action": "created", "model": "shop.order", "pk": 1, "data": {"a": 1, "b": 2}, "changed": ["a", "b"]},
        {"action": "updated", "model": "shop.order", "pk": 1, "data": {"a": 3, "b": 2}, "changed": ["a"]},
        {"action": "deleted", "model": "shop.order", "pk": 1, "data": {}, "changed": []},
        {"action": "synced", "model": "shop.order", "rows": [{"pk": 1, "a": 3}, {"pk": 2, "a": 4}]},
    ]
    assert all(request["params"]["topic"] == "models.shop.order" for request in gateway.bodies())
    assert gateway.bodies()[2]["params"]["realm"] == "realm1"


def test_publish_batch_sends_one_call_and_returns_per_event_outcomes(fake):
    def respond(method, params):
        assert method == "publish_batch" and list(params) == ["events"]
        return [{"publication": 5}, {"error": {"code": -32602, "message": "events[1].realm: unknown realm"}}]

    gateway, emitter = fake(respond)
    outcomes = emitter.publish_batch([Event("a.b"), {"topic": "a.c", "realm": "nowhere"}])
    assert outcomes[0] == Receipt(5)
    assert isinstance(outcomes[1], Rejected) and outcomes[1].code == -32602
    assert len(gateway.requests) == 1
    assert emitter.publish_batch([]) == []


def test_a_bad_event_in_a_batch_sends_nothing(fake):
    gateway, emitter = fake(lambda method, params: [])
    with pytest.raises(Invalid) as error:
        emitter.publish_batch([Event("a.b"), {"topic": "a.b", "options": {"retian": True}}])
    assert error.value.field == "events[1].options.retian"
    with pytest.raises(Invalid):
        emitter.publish("bad topic")
    assert gateway.requests == []


def test_error_answers_raise_rejected_with_code_and_message(fake):
    gateway, emitter = fake(lambda method, params: ("error", {
        "code": -32001, "message": "signature invalid", "data": {"reason": "invalid"}}))
    with pytest.raises(Rejected) as error:
        emitter.publish("a.b")
    assert (error.value.code, error.value.message, error.value.data) == (-32001, "signature invalid", {"reason": "invalid"})
    assert len(gateway.requests) == 1  # a refusal is not retried


def test_http_errors_with_a_json_rpc_body_are_rejected(fake):
    gateway, emitter = fake(lambda method, params: ("http", 413, {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "request body too large"}}))
    with pytest.raises(Rejected) as error:
        emitter.publish("a.b")
    assert error.value.code == -32600 and "too large" in error.value.message


def test_a_busy_gateway_is_retried_then_unreachable(fake):
    gateway, emitter = fake(lambda method, params: ("http", 503, {"error": {"code": -32603, "message": "busy"}}))
    with pytest.raises(Unreachable) as error:
        emitter.publish("a.b")
    assert "503" in str(error.value) and len(gateway.requests) == 2
    nonces = {header.split(",")[1] for header, _ in gateway.requests}
    assert len(nonces) == 2  # each attempt signed afresh


def test_a_closed_port_is_unreachable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emitter = Emitter(SECRET, jsonrpc_url=f"http://127.0.0.1:{port}", timeout=1, retries=0)
    with pytest.raises(Unreachable) as error:
        emitter.publish("a.b")
    assert str(port) in error.value.target
    with pytest.raises(Unreachable):
        emitter.session_count()


def test_management_calls(fake):
    answers = {
        "last_publication": {"publication": 12},
        "session_count": 3,
        "sessions": [{"session": 1, "authid": "alice", "authrole": "member", "realm": "realm1"}],
        "kick": {"kicked": 2},
        "subscribers": {"count": 1, "sessions": [1]},
    }
    gateway, emitter = fake(lambda method, params: answers[method])
    assert emitter.last_publication("models.shop.order") == 12
    assert emitter.session_count() == 3
    assert emitter.sessions("alice")[0]["authrole"] == "member"
    assert emitter.kick("alice", message="bye") == 2
    assert emitter.subscribers("chat.room", realm="realm1") == {"count": 1, "sessions": [1]}
    params = [(request["method"], request["params"]) for request in gateway.bodies()]
    assert params == [("last_publication", {"topic": "models.shop.order"}), ("session_count", {}),
                      ("sessions", {"authid": "alice"}), ("kick", {"authid": "alice", "message": "bye"}),
                      ("subscribers", {"topic": "chat.room", "realm": "realm1"})]
    with pytest.raises(Invalid):
        emitter.last_publication("bad topic")
    answers["last_publication"] = {"publication": None}
    assert emitter.last_publication("a.b") is None
    answers["last_publication"] = {"nope": 1}
    with pytest.raises(Rejected):
        emitter.last_publication("a.b")


def test_the_emitter_is_safe_to_share_between_threads(fake):
    gateway, emitter = fake(lambda method, params: {"publication": 1})
    errors = []

    def work(n):
        try:
            for i in range(10):
                emitter.model("shop.order").updated(i, {"n": n}, ["n"])
        except Exception as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(gateway.requests) == 40
    assert len({request["id"] for request in gateway.bodies()}) == 40


def test_management_calls_need_a_jsonrpc_endpoint():
    pytest.importorskip("zmq")
    from switchboard_emitter import ConfigError

    emitter = Emitter(SECRET, "zmq", zmq_endpoint="tcp://127.0.0.1:5999")
    with pytest.raises(ConfigError) as error:
        emitter.last_publication("a.b")
    assert error.value.key == "ingest.jsonrpc"
    emitter.close()
