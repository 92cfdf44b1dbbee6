"""switchboard.toml as an emitter reads it: the example file, environment overrides as on the Rust side,
and errors that name the key (and the file or variable)."""

from pathlib import Path

import pytest

from switchboard_emitter import ConfigError, Emitter, load_config
from switchboard_emitter.config import apply_env

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = REPO_ROOT / "shared-config" / "switchboard.example.toml"
NO_ENV = {}


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "switchboard.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path, env=NO_ENV) -> ConfigError:
    with pytest.raises(ConfigError) as error:
        load_config(path, env)
    return error.value


def test_the_example_file_has_no_secret_and_says_so():
    error = error_of(EXAMPLE)
    assert error.key == "security.secret" and str(EXAMPLE) in str(error)


def test_the_example_file_with_a_secret_from_the_environment():
    settings = load_config(EXAMPLE, {"SWITCHBOARD__SECURITY__SECRET": "from-env", "PATH": "/bin"})
    assert settings.secret == "from-env"
    assert settings.transport == "jsonrpc"
    assert settings.jsonrpc_url == "http://127.0.0.1:8081"
    assert settings.zmq_endpoint == "tcp://127.0.0.1:5560"
    assert settings.amqp_url is None
    assert "from-env" not in repr(settings)


def test_overrides_are_case_insensitive_typed_and_a_number_can_be_a_secret():
    env = {"switchboard__Security__SECRET": "123456", "SWITCHBOARD__INGEST__JSONRPC__LISTEN": "127.0.0.1:9999",
           "SWITCHBOARD__EMITTER__TRANSPORT": "zmq", "SWITCHBOARD__INGEST__ZMQ__ENDPOINT": "tcp://127.0.0.1:7",
           "SWITCHBOARD__GATEWAY__MAX_MESSAGE_BYTES": "2048"}
    settings = load_config(EXAMPLE, env)
    assert settings.secret == "123456"
    assert settings.transport == "zmq" and settings.zmq_endpoint == "tcp://127.0.0.1:7"
    assert settings.jsonrpc_url == "http://127.0.0.1:9999"


def test_overrides_create_sections(tmp_path):
    path = write(tmp_path, '[security]\nsecret = "s"\n[emitter]\ntransport = "amqp"\n')
    assert error_of(path).key == "ingest.amqp"
    settings = load_config(path, {"SWITCHBOARD__INGEST__AMQP__EXCHANGE": "x.events"})
    assert (settings.amqp_url, settings.amqp_exchange, settings.amqp_queue) == (
        "amqp://guest:guest@127.0.0.1:5672/%2f", "x.events", "switchboard.ingest")


@pytest.mark.parametrize("var, value, key", [
    ("SWITCHBOARD__SECURITY__SECRETT", "x", "security.secrett"),
    ("SWITCHBOARD__GATEWAY__MAX_MESSAGE_BYTES", "lots", "gateway.max_message_bytes"),
    ("SWITCHBOARD__EMITTER__TRANSPORT", "carrier-pigeon", "emitter.transport"),
    ("SWITCHBOARD__INGEST__JSONRPC__LISTEN", "localhost:80", "ingest.jsonrpc.listen"),
    ("SWITCHBOARD__NOPE__KEY", "1", "nope"),
    ("SWITCHBOARD__REALMS__NAME", "x", "realms.name"),
    ("SWITCHBOARD__SECURITY__", "x", None),
])
def test_bad_overrides_name_the_variable_and_the_key(var, value, key):
    error = error_of(EXAMPLE, {"SWITCHBOARD__SECURITY__SECRET": "s", var: value})
    assert error.var == var and error.key == key, str(error)
    assert var in str(error)


def test_array_overrides_say_what_to_do_instead():
    error = error_of(EXAMPLE, {"SWITCHBOARD__REALMS__NAME": "x"})
    assert "SWITCHBOARD__REALMS" in str(error) and "cannot be overridden" in str(error)


def test_a_whole_array_can_be_replaced():
    table = apply_env({"realms": [{"name": "a"}]}, {"SWITCHBOARD__REALMS": '[{ name = "b" }]'})
    assert table["realms"] == [{"name": "b"}]


@pytest.mark.parametrize("text, key", [
    ('[security]\nsecret = ""\n[ingest.jsonrpc]\n', "security.secret"),
    ('[security]\nsecret = "a"\nsecret_file = "b"\n[ingest.jsonrpc]\n', "security.secret_file"),
    ('[security]\nsecret_file = "/nonexistent/secret"\n[ingest.jsonrpc]\n', "security.secret_file"),
    ('[security]\nsecret = 5\n', "security.secret"),
    ('[security]\nsecret = "a"\n[ingest.jsonrpc]\nlisten = "127.0.0.1"\n', "ingest.jsonrpc.listen"),
    ('[security]\nsecret = "a"\n[ingest.jsonrpc]\nlistn = "127.0.0.1:1"\n', "ingest.jsonrpc.listn"),
    ('[security]\nsecret = "a"\n[ingest.carrier]\n', "ingest.carrier"),
    ('[security]\nsecret = "a"\n[gateway]\nmax_message_bytes = -1\n', "gateway.max_message_bytes"),
    ('[security]\nsecret = "a"\n[cluster]\n', "cluster"),
    ('[security]\nsecret = "a"\n', "ingest.jsonrpc"),
])
def test_file_errors_name_the_key_and_the_file(tmp_path, text, key):
    path = write(tmp_path, text)
    error = error_of(path)
    assert error.key == key, str(error)
    assert str(path) in str(error)


def test_toml_syntax_errors_give_the_line(tmp_path):
    error = error_of(write(tmp_path, '[security]\nsecret = "a"\nbroken =\n'))
    assert "line 3" in str(error) and error.file


def test_secret_file_is_read_without_its_trailing_newline(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("from-file\n")
    path = write(tmp_path, f'[security]\nsecret_file = "{secret}"\n[ingest.jsonrpc]\nlisten = "[::1]:8081"\n')
    settings = load_config(path, NO_ENV)
    assert settings.secret == "from-file" and settings.jsonrpc_url == "http://[::1]:8081"


def test_from_config_builds_the_configured_transport(tmp_path):
    path = write(tmp_path, '[security]\nsecret = "s"\n[ingest.jsonrpc]\nlisten = "127.0.0.1:8081"\n')
    emitter = Emitter.from_config(path, NO_ENV, timeout=3)
    assert emitter.transport.name == "jsonrpc" and emitter.transport.url == "http://127.0.0.1:8081/"
    pytest.importorskip("zmq")
    zmq_emitter = Emitter.from_config(path, {"SWITCHBOARD__EMITTER__TRANSPORT": "zmq",
                                             "SWITCHBOARD__INGEST__ZMQ__ENDPOINT": "tcp://127.0.0.1:5999"})
    assert zmq_emitter.transport.name == "zmq" and zmq_emitter._calls is not None
