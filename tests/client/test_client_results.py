"""Requests are built from keyword arguments, and responses become plain dataclasses."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from rnnserve_client import AsyncClient, Client
from rnnserve_client.results import TokenLogprob, enum_name
from rnnserve_client.v1 import assistant_pb2, generation_pb2, models_pb2, translation_pb2
from tests.client.fake_rnnserve import FakeServer, chunks

GEN = generation_pb2
LP = GEN.TokenLogprob

GENERATE_RESPONSE = GEN.GenerateResponse(
    model="lm",
    completions=[
        GEN.Completion(
            index=0,
            text="It is",
            finish_reason=GEN.FINISH_REASON_STOP_SEQUENCE,
            seed=41,
            generated_tokens=6,
            logprobs=[LP(token="I", logprob=-0.5)],
            stop_sequence=".",
        ),
        GEN.Completion(index=1, text="When", finish_reason=GEN.FINISH_REASON_LENGTH, seed=42, generated_tokens=4),
        GEN.Completion(index=2, text="", finish_reason=GEN.FINISH_REASON_END_OF_TEXT, seed=43),
        GEN.Completion(index=3, text="Th", finish_reason=GEN.FINISH_REASON_CANCELLED, seed=44),
    ],
    prompt_tokens=5,
    unknown_characters=["€"],
    timing=GEN.Timing(queue_seconds=0.25, prefill_seconds=0.5, generation_seconds=1.5),
)


def test_generate_result_conversion(fake: FakeServer) -> None:
    fake.on("Generate", lambda r, c: GENERATE_RESPONSE)
    with Client(fake.target) as client:
        result = client.generate("lm", "Emma", n=4, seed=41, stop=".")
    assert (result.text, result.finish_reason, result.seed) == ("It is", "stop_sequence", 41)
    assert [c.finish_reason for c in result.completions] == [
        "stop_sequence",
        "length",
        "end_of_text",
        "cancelled",
    ]
    assert [c.seed for c in result.completions] == [41, 42, 43, 44]
    assert result.completions[0].logprobs == [TokenLogprob(token="I", logprob=-0.5)]
    assert result.completions[0].stop_sequence == "."
    assert result.completions[1].stop_sequence is None
    assert result.unknown_characters == ["€"]
    assert result.prompt_tokens == 5
    assert result.timing.generation_seconds == 1.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.completions[0].text = "changed"  # type: ignore[misc]


def test_generate_request_fields(fake: FakeServer) -> None:
    fake.on("Generate", lambda r, c: GENERATE_RESPONSE)
    with Client(fake.target) as client:
        client.generate("lm", "Emma")
        client.generate(
            "lm",
            "Emma",
            max_new_tokens=20,
            temperature=0.0,
            top_k=5,
            top_p=0.5,
            repetition_penalty=1.25,
            n=2,
            stop=["\n", "."],
            seed=0,
            logprobs=True,
        )
        with pytest.raises(TypeError):
            client.generate("lm", "Emma", temprature=0.5)  # type: ignore[call-arg]
    defaults, explicit = (call.request for call in fake.calls["Generate"])
    for field in ("temperature", "top_p", "repetition_penalty", "seed"):
        assert not defaults.HasField(field)
        assert explicit.HasField(field)  # even when 0: temperature=0 is greedy, seed=0 is a seed
    assert (defaults.model, defaults.prompt, defaults.max_new_tokens, defaults.n) == ("lm", "Emma", 0, 0)
    assert list(defaults.stop) == []
    assert (explicit.temperature, explicit.top_p, explicit.repetition_penalty, explicit.seed) == (
        0.0,
        0.5,
        1.25,
        0,
    )
    assert (explicit.max_new_tokens, explicit.top_k, explicit.n, explicit.logprobs) == (20, 5, 2, True)
    assert list(explicit.stop) == ["\n", "."]


def test_stream_chunks(fake: FakeServer) -> None:
    fake.on(
        "GenerateStream",
        chunks(
            GEN.GenerateStreamResponse(index=0, text="Hel", seed=9, unknown_characters=["€"]),
            GEN.GenerateStreamResponse(index=1, text="Wo", seed=10),
            GEN.GenerateStreamResponse(
                index=0,
                text="lo",
                seed=9,
                finish_reason=GEN.FINISH_REASON_STOP_SEQUENCE,
                generated_tokens=6,
                stop_sequence="!",
                logprobs=[LP(token="o", logprob=-1.0)],
            ),
            GEN.GenerateStreamResponse(index=1, text="", seed=10, finish_reason=GEN.FINISH_REASON_LENGTH),
        ),
    )
    with Client(fake.target) as client, client.generate_stream("lm", "x", n=2, stop="!") as stream:
        received = list(stream)
    assert [(c.index, c.text, c.finish_reason, c.seed) for c in received] == [
        (0, "Hel", None, 9),
        (1, "Wo", None, 10),
        (0, "lo", "stop_sequence", 9),
        (1, "", "length", 10),
    ]
    assert received[0].unknown_characters == ["€"]
    assert received[2].logprobs == [TokenLogprob("o", -1.0)]
    assert (received[2].generated_tokens, received[2].stop_sequence) == (6, "!")
    assert list(fake.calls["GenerateStream"][0].request.stop) == ["!"]


def test_score_result(fake: FakeServer) -> None:
    fake.on(
        "Score",
        lambda r, c: GEN.ScoreResponse(
            model="lm",
            logprobs=[LP(token="a", logprob=-0.5), LP(token="b", logprob=-1.5)],
            total_logprob=-2.0,
            nats_per_char=1.0,
            bits_per_char=1.4426950408889634,
            perplexity=2.718281828459045,
        ),
    )
    with Client(fake.target) as client:
        result = client.score("lm", "ab", context="x")
    assert [(lp.token, lp.logprob) for lp in result.logprobs] == [("a", -0.5), ("b", -1.5)]
    assert (result.total_logprob, result.nats_per_char, result.perplexity) == (-2.0, 1.0, 2.718281828459045)
    assert result.bits_per_char == 1.4426950408889634
    request = fake.calls["Score"][0].request
    assert (request.text, request.context) == ("ab", "x")


TR = translation_pb2


def test_translate_attention_is_reshaped(fake: FakeServer) -> None:
    attention = TR.Attention(
        source_tokens=["▁Hallo", "▁Welt", "</s>"],
        target_tokens=["▁Hello", "▁world"],
        weights=[0.5, 0.25, 0.25, 0.0, 0.75, 0.25],
    )
    fake.on(
        "Translate",
        lambda r, c: TR.TranslateResponse(
            model="mt",
            translations=[
                TR.TranslationResult(
                    source_tokens=["▁Hallo", "▁Welt"],
                    hypotheses=[
                        TR.Hypothesis(
                            text="Hello world",
                            score=-0.5,
                            log_probability=-0.75,
                            tokens=["▁Hello", "▁world"],
                            attention=attention,
                        ),
                        TR.Hypothesis(text="Hi world", score=-1.0, log_probability=-1.25, tokens=["▁Hi", "▁world"]),
                    ],
                ),
            ],
        ),
    )
    with Client(fake.target) as client:
        results = client.translate("mt", "Hallo Welt", beam_size=4, n_best=2, return_attention=True, length_penalty=0.0)
    assert isinstance(results, list)
    assert len(results) == 1
    best, second = results[0].hypotheses
    assert (best.text, best.score, best.log_probability) == ("Hello world", -0.5, -0.75)
    assert best.attention == [[0.5, 0.25, 0.25], [0.0, 0.75, 0.25]]
    assert best.attention_source_tokens == ["▁Hallo", "▁Welt", "</s>"]
    assert best.attention_target_tokens == best.tokens == ["▁Hello", "▁world"]
    assert second.attention is None
    assert results[0].text == "Hello world"
    request = fake.calls["Translate"][0].request
    assert list(request.texts) == ["Hallo Welt"]
    assert (request.beam_size, request.n_best, request.return_attention) == (4, 2, True)
    assert request.HasField("length_penalty")
    assert not request.HasField("max_length_ratio")


def test_translate_several_texts(fake: FakeServer) -> None:
    fake.on(
        "Translate",
        lambda r, c: TR.TranslateResponse(
            translations=[TR.TranslationResult(hypotheses=[TR.Hypothesis(text=t.upper())]) for t in r.texts]
        ),
    )
    with Client(fake.target) as client:
        results = client.translate("mt", ["a", "b"], max_length=10, max_length_ratio=1.5)
    assert [r.hypotheses[0].text for r in results] == ["A", "B"]
    request = fake.calls["Translate"][0].request
    assert (request.max_length, request.max_length_ratio) == (10, 1.5)


def test_malformed_attention_is_refused(fake: FakeServer) -> None:
    attention = TR.Attention(source_tokens=["a", "b"], target_tokens=["c"], weights=[1.0])
    fake.on(
        "Translate",
        lambda r, c: TR.TranslateResponse(
            translations=[TR.TranslationResult(hypotheses=[TR.Hypothesis(attention=attention)])]
        ),
    )
    with Client(fake.target) as client, pytest.raises(ValueError, match="1 weights for 1 x 2"):
        client.translate("mt", "x", return_attention=True)


AS = assistant_pb2


def test_suggest(fake: FakeServer) -> None:
    fake.on(
        "Suggest",
        lambda r, c: AS.SuggestResponse(
            suggestions=[
                AS.Suggestion(
                    text="Elizabeth",
                    kind=AS.SUGGESTION_KIND_WORD,
                    probability=0.75,
                    absolute_probability=0.5,
                    insert_text="abeth",
                    replace_chars=4,
                ),
                AS.Suggestion(text=" was", kind=AS.SUGGESTION_KIND_NEXT_WORDS, probability=1.0, insert_text=" was"),
                AS.Suggestion(text=" said she.", kind=AS.SUGGESTION_KIND_PHRASE, probability=1.0),
            ]
        ),
    )
    with Client(fake.target) as client:
        found = client.suggest(
            "as", "Eliz", max_suggestions=2, kinds=("word", "next_words", "phrase"), max_phrase_chars=40
        )
        client.suggest("as", "Eliz", kinds="phrase")
        with pytest.raises(ValueError, match=r"'sentence'.*next_words"):
            client.suggest("as", "Eliz", kinds=["sentence"])
    assert [s.kind for s in found] == ["word", "next_words", "phrase"]
    word = found[0]
    assert (word.text, word.probability, word.absolute_probability) == ("Elizabeth", 0.75, 0.5)
    assert (word.insert_text, word.replace_chars) == ("abeth", 4)
    first, second = (call.request for call in fake.calls["Suggest"])
    assert list(first.options.kinds) == [
        AS.SUGGESTION_KIND_WORD,
        AS.SUGGESTION_KIND_NEXT_WORDS,
        AS.SUGGESTION_KIND_PHRASE,
    ]
    assert (first.options.max_suggestions, first.options.max_phrase_chars, first.text) == (2, 40, "Eliz")
    assert list(second.options.kinds) == [AS.SUGGESTION_KIND_PHRASE]
    assert second.options.max_suggestions == 3


MODEL = models_pb2.Model(
    name="austen-lstm",
    kind=models_pb2.MODEL_KIND_LANGUAGE_MODEL,
    backend="char-lstm",
    plugin="rnnserve",
    plugin_version="0.1.0",
    state=models_pb2.MODEL_STATE_READY,
    parameter_count=1234,
    card=models_pb2.ModelCard(description="Austen", license="MIT", metrics={"test_bits_per_char": 1.5}),
    stats=models_pb2.ModelStats(queue_depth=2, steps_total=10, mean_batch_size=3.5),
)


def test_model_info(fake: FakeServer) -> None:
    failed = models_pb2.Model(
        name="mt",
        kind=models_pb2.MODEL_KIND_TRANSLATOR,
        state=models_pb2.MODEL_STATE_FAILED,
        reason="weights missing",
    )
    fake.on("GetModel", lambda r, c: MODEL)
    fake.on("ListModels", lambda r, c: models_pb2.ListModelsResponse(models=[MODEL, failed]))
    with Client(fake.target) as client:
        info = client.get_model("austen-lstm")
        listed = client.list_models()
        client.list_models(kind="translator")
    assert (info.name, info.kind, info.backend, info.plugin, info.plugin_version) == (
        "austen-lstm",
        "language-model",
        "char-lstm",
        "rnnserve",
        "0.1.0",
    )
    assert (info.state, info.reason, info.parameter_count) == ("ready", "", 1234)
    assert info.card.description == "Austen"
    assert info.card.metrics == {"test_bits_per_char": 1.5}
    assert (info.stats.queue_depth, info.stats.steps_total, info.stats.mean_batch_size) == (2, 10, 3.5)
    assert [(m.name, m.kind, m.state, m.reason) for m in listed] == [
        ("austen-lstm", "language-model", "ready", ""),
        ("mt", "translator", "failed", "weights missing"),
    ]
    assert fake.calls["GetModel"][0].request.name == "austen-lstm"
    all_kinds, translators = (call.request.kind for call in fake.calls["ListModels"])
    assert (all_kinds, translators) == (models_pb2.MODEL_KIND_UNSPECIFIED, models_pb2.MODEL_KIND_TRANSLATOR)


def test_enum_value_from_a_newer_server_is_kept_as_its_number() -> None:
    assert enum_name(GEN.FinishReason, 3) == "end_of_text"
    assert enum_name(GEN.FinishReason, 99) == "99"


def test_async_results(fake: FakeServer) -> None:
    fake.on("Generate", lambda r, c: GENERATE_RESPONSE)
    fake.on("GetModel", lambda r, c: MODEL)
    fake.on(
        "Translate",
        lambda r, c: TR.TranslateResponse(
            translations=[
                TR.TranslationResult(
                    hypotheses=[
                        TR.Hypothesis(
                            text="x",
                            attention=TR.Attention(source_tokens=["a"], target_tokens=["b", "c"], weights=[1.0, 1.0]),
                        )
                    ]
                )
            ]
        ),
    )
    fake.on("Suggest", lambda r, c: AS.SuggestResponse(suggestions=[AS.Suggestion(text="a", kind=2)]))
    fake.on("Score", lambda r, c: GEN.ScoreResponse(logprobs=[LP(token="a", logprob=-2.0)], total_logprob=-2.0))
    fake.on(
        "GenerateStream",
        chunks(
            GEN.GenerateStreamResponse(text="a", seed=5),
            GEN.GenerateStreamResponse(finish_reason=GEN.FINISH_REASON_END_OF_TEXT),
        ),
    )

    async def main() -> None:
        async with AsyncClient(fake.target) as client:
            result = await client.generate("lm", "x", temperature=0.0)
            assert [c.finish_reason for c in result.completions][:2] == ["stop_sequence", "length"]
            assert result.seed == 41
            info = await client.get_model("austen-lstm")
            assert (info.kind, info.state) == ("language-model", "ready")
            [translation] = await client.translate("mt", "a", return_attention=True)
            assert translation.hypotheses[0].attention == [[1.0], [1.0]]
            [suggestion] = await client.suggest("as", "a", kinds=["next_words"])
            assert suggestion.kind == "next_words"
            assert (await client.score("lm", "a")).logprobs == [TokenLogprob("a", -2.0)]
            received = [(c.text, c.finish_reason, c.seed) async for c in client.generate_stream("lm", "x")]
            assert received == [("a", None, 5), ("", "end_of_text", 0)]

    asyncio.run(main())
    assert fake.calls["Generate"][0].request.HasField("temperature")
