"""``dtype = "auto"`` by measurement (``rnnserve.host.precision_choice``): the chooser's rule, its
cache, forcing, the char-lstm option, and ``GetModel`` showing the choice on a real server."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rnnserve.edge.errors import ConfigurationError
from rnnserve.host import precision_choice as pc
from rnnserve.host.weights_precision import weights_precision
from rnnserve.ops.config import ServerConfig
from rnnserve.testing.hosts import LocalContext, plugin_host
from rnnserve.testing.server import running_server
from rnnserve_client import Client
from rnnserve_plugins.char_lstm.backend import create_backend, parse_options
from tests.conformance.tiny_models import tiny_char_lstm

#: ms a step of each fake candidate takes (on a fake clock) at batch 1 and at batch 64: int8 is the fastest, bfloat16
#: the fastest at batch 64 only (geometric mean of ms per char: int8 0.25, float32 0.5, bfloat16 0.71).
SLEEP_MS = {"float32": (1.0, 16.0), "bfloat16": (4.0, 8.0), "int8": (0.5, 8.0)}
#: ms a prompt read of each takes: int8 reads slowly (its recurrence over a prompt is not int8).
READ_MS = {"float32": 8.0, "bfloat16": 8.0, "int8": 256.0}


@pytest.fixture(autouse=True)
def fresh_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own cache directory and nothing forced."""
    monkeypatch.setenv(pc.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(pc.PRECISION_ENV, raising=False)
    return tmp_path / "cache"


class FakeClock:
    """The chooser's ``time`` module, with a clock that only the fake steps advance."""

    now = 0.0
    strftime = staticmethod(time.strftime)

    @classmethod
    def perf_counter(cls) -> float:
        return cls.now


class Fakes:
    """Candidates that record being built and stepped; a step takes :data:`SLEEP_MS` on the fake clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(pc, "time", FakeClock)
        self.built: list[str] = []
        self.steps = 0

    def candidates(self) -> dict[str, object]:
        return {p: (lambda p=p: self.built.append(p) or p) for p in SLEEP_MS}

    def stepper(self, built: str, batch: int) -> pc.Stepper:
        def step() -> None:
            self.steps += 1
            FakeClock.now += SLEEP_MS[built][batch != 1] / 1000
        return step

    def reader(self, built: str, chars: int) -> pc.Stepper:
        def read() -> None:
            FakeClock.now += READ_MS[built] / 1000
        return read

    def choose(self, costs: dict[str, float], max_cost: float = 0.01, checkpoint: str = "ckpt",
               reads: bool = False) -> tuple:
        return pc.choose_precision(self.candidates(), costs, max_cost, checkpoint, model="m", stepper=self.stepper,
                                   reader=self.reader if reads else None)


def test_the_fastest_eligible_candidate_wins_by_the_geometric_mean(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch)
    built, choice = fakes.choose({"int8": 0.001, "bfloat16": 0.001})
    assert built == choice.precision == "int8" and choice.how == "measured"
    assert sorted(fakes.built) == ["bfloat16", "float32", "int8"]  # each eligible one timed
    assert choice.timings["int8"].us_per_char < choice.timings["float32"].us_per_char \
        < choice.timings["bfloat16"].us_per_char
    assert choice.reason.startswith("int8: fastest within max_precision_cost 0.01 nats/char, measured")
    assert "\n" not in choice.reason


def test_prompt_reading_counts_when_the_backend_times_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """int8 decodes fastest but reads prompts 32x slower: with reads in the mean, float32 wins."""
    built, choice = Fakes(monkeypatch).choose({"int8": 0.001, "bfloat16": 0.001}, reads=True)
    assert built == "float32"
    assert choice.timings["int8"].read_ms == pytest.approx(READ_MS["int8"])
    assert f"read {pc.READ_CHARS} chars" in choice.reason


def test_a_candidate_over_the_bound_or_without_a_cost_is_refused_unbuilt(monkeypatch: pytest.MonkeyPatch) -> None:
    fakes = Fakes(monkeypatch)
    built, choice = fakes.choose({"int8": 0.02})  # bfloat16: no recorded cost
    assert built == "float32" and fakes.built == ["float32"] and fakes.steps == 0
    assert choice.how == "only candidate"
    assert "int8 refused: cost +0.02000 > bound" in choice.reason
    assert "bfloat16 refused: no recorded cost" in choice.reason
    _, choice = fakes.choose({"int8": 0.02, "bfloat16": 0.001}, max_cost=0.05)
    assert choice.precision == "int8"  # a looser bound admits it


def test_a_hit_reuses_the_timings_and_builds_only_the_choice(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture,
                                                             fresh_cache: Path) -> None:
    costs = {"int8": 0.001, "bfloat16": 0.001}
    Fakes(monkeypatch).choose(costs)
    assert (fresh_cache / pc.CACHE_FILE).is_file()
    fakes = Fakes(monkeypatch)
    with caplog.at_level(logging.INFO, "rnnserve.precision"):
        built, choice = fakes.choose(costs)
    assert built == "int8" and choice.how == "cached" and fakes.built == ["int8"] and fakes.steps == 0
    assert "cached on this machine" in caplog.text and "us/char" in caplog.text
    # the rule runs again on the cached figures: a bound that refuses int8 needs no new timing
    _, choice = fakes.choose({"int8": 0.02, "bfloat16": 0.001})
    assert choice.precision == "float32" and choice.how == "cached" and fakes.steps == 0


def test_another_checkpoint_or_machine_is_another_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"one")
    first = pc.checkpoint_identity(weights)
    weights.write_bytes(b"two")
    assert pc.checkpoint_identity(weights) != first
    assert pc.cache_key("a") != pc.cache_key("b")
    key = pc.cache_key("a")
    monkeypatch.setattr(pc.torch, "get_num_threads", lambda: 97)
    assert pc.cache_key("a") != key
    fakes = Fakes(monkeypatch)
    fakes.choose({"int8": 0.0, "bfloat16": 0.0}, checkpoint="other")
    assert fakes.steps > 0  # measured again


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"KEY": {"timings": {"int8": [1]}}}'])
def test_a_corrupt_cache_warns_and_measures(monkeypatch: pytest.MonkeyPatch, damage: str, fresh_cache: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    fresh_cache.mkdir()
    (fresh_cache / pc.CACHE_FILE).write_text(damage.replace("KEY", pc.cache_key("ckpt")))
    fakes = Fakes(monkeypatch)
    with caplog.at_level(logging.WARNING, "rnnserve.precision"):
        _, choice = fakes.choose({"int8": 0.0, "bfloat16": 0.0})
    assert choice.how == "measured" and "timing again" in caplog.text
    assert pc.cached_timings(pc.cache_key("ckpt")) == dict(choice.timings)  # rewritten whole


def test_an_unwritable_cache_warns_and_still_loads(monkeypatch: pytest.MonkeyPatch, fresh_cache: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    fresh_cache.write_text("a file where the directory should be")
    with caplog.at_level(logging.WARNING, "rnnserve.precision"):
        built, choice = Fakes(monkeypatch).choose({"int8": 0.0, "bfloat16": 0.0})
    assert built == "int8" and choice.how == "measured" and "cannot write the precision cache" in caplog.text


def test_the_environment_forces_a_precision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(pc.PRECISION_ENV, "bfloat16")
    fakes = Fakes(monkeypatch)
    built, choice = fakes.choose({})  # no costs: forcing ignores them
    assert built == "bfloat16" and choice.how == "forced" and fakes.steps == 0
    assert choice.reason == "bfloat16: forced by RNNSERVE_PRECISION"
    monkeypatch.setenv(pc.PRECISION_ENV, "float16")
    with pytest.raises(ConfigurationError, match="RNNSERVE_PRECISION must be one of"):
        fakes.choose({})


@pytest.mark.parametrize(("options", "error"), [
    ({"dtype": "auto", "max_precision_cost": -0.1}, "must be a number of nats per character >= 0"),
    ({"dtype": "auto", "max_precision_cost": "0.01"}, "must be a number"),
    ({"dtype": "auto", "max_precision_cost": True}, "must be a number"),
    ({"dtype": "float32", "max_precision_cost": 0.01}, "bounds the choice of dtype = \"auto\""),
    ({"dtype": "auto", "quantize": True, "max_precision_cost": 0.01}, "this spec sets its precision"),
])
def test_the_bound_option_is_validated(options: dict, error: str) -> None:
    with pytest.raises(ConfigurationError, match=error):
        parse_options(options, "m")


@pytest.mark.parametrize("bound", [0, 0.02])
def test_valid_bounds(bound: float) -> None:
    assert pc.max_cost_option(parse_options({"dtype": "auto", "max_precision_cost": bound}, "m"), "m") == bound
    assert pc.max_cost_option({}, "m") == pc.DEFAULT_MAX_COST


def _with_costs(tmp_path: Path, costs: dict[str, float], options: dict) -> object:
    spec = tiny_char_lstm(tmp_path)
    card = {"description": "tiny", "metrics": pc.cost_metrics(1.0, {p: 1.0 + c for p, c in costs.items()})}
    (Path(spec.path) / "model_card.json").write_text(json.dumps(card))
    return dataclasses.replace(spec, options=options)


def test_char_lstm_auto_serves_what_it_chose(tmp_path: Path) -> None:
    spec = _with_costs(tmp_path, {"int8": 0.001, "bfloat16": 0.001}, {"dtype": "auto"})
    backend = create_backend(spec, LocalContext())
    assert backend.precision_choice.startswith(f"{weights_precision(backend)}: fastest within")
    tight = create_backend(dataclasses.replace(spec, options={"dtype": "auto", "max_precision_cost": 0}),
                           LocalContext())
    assert weights_precision(tight) == "float32" and "the only candidate" in tight.precision_choice
    explicit = create_backend(dataclasses.replace(spec, options={"quantize": True}), LocalContext())
    assert weights_precision(explicit) == "int8" and explicit.precision_choice == ""


@pytest.fixture(scope="module")
def auto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp_path = tmp_path_factory.mktemp("auto")
    spec = _with_costs(tmp_path, {"int8": 0.001, "bfloat16": 0.03}, {"dtype": "auto"})
    plain = dataclasses.replace(spec, name="tiny-f32", options={})
    with running_server(ServerConfig(models=(spec, plain)), plugin_host("char-lstm")) as server:
        yield server


def test_get_model_shows_how_the_precision_was_chosen(auto_server) -> None:
    with Client(auto_server.target, timeout=30) as client:
        auto = client.get_model("tiny-char-lstm")
        plain = client.get_model("tiny-f32")
    assert auto.precision in ("float32", "int8")
    assert auto.precision_choice.startswith(f"{auto.precision}: fastest within max_precision_cost 0.01")
    assert "bfloat16 refused: cost +0.03000 > bound" in auto.precision_choice
    assert plain.precision == "float32" and plain.precision_choice == ""
