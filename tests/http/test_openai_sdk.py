"""``/v1`` through the official ``openai`` SDK (``base_url=...``): sync and async, streamed and not."""

from __future__ import annotations

import asyncio

import openai
import pytest

from rnnserve.testing.server import ServerThread
from rnnserve_client import Client
from tests.support.toy_plugin import TEXT


def sdk(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0, timeout=30)


def test_models_lists_the_language_models(base_url: str) -> None:
    models = sdk(base_url).models.list()
    assert sorted(m.id for m in models.data) == ["toy", "toy-crash", "toy-slow"]
    assert sdk(base_url).models.retrieve("toy").id == "toy"
    with pytest.raises(openai.NotFoundError, match="toy-tr"):
        sdk(base_url).models.retrieve("toy-tr")  # a translator: not a completions model


def test_completion_matches_generate_over_grpc(http_server: ServerThread, base_url: str) -> None:
    completion = sdk(base_url).completions.create(model="toy", prompt="the qu", max_tokens=10, temperature=0)
    with Client(http_server.target, timeout=30) as client:
        expected = client.generate("toy", "the qu", max_new_tokens=10, temperature=0)
    assert completion.choices[0].text == expected.text == "ick brown "
    assert completion.choices[0].finish_reason == "length"
    assert completion.object == "text_completion" and completion.model == "toy"
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (6, 10)  # characters
    assert completion.usage.total_tokens == 16


def test_default_max_tokens_is_openais_16(base_url: str) -> None:
    completion = sdk(base_url).completions.create(model="toy", prompt="", temperature=0)
    assert completion.choices[0].text == TEXT[:16]


def test_prompt_list_n_seed_stop_echo_and_logprobs(base_url: str) -> None:
    client = sdk(base_url)
    completion = client.completions.create(model="toy", prompt=["the qu", "jumps"], n=2, max_tokens=30,
                                           temperature=0.5, seed=7, stop=["lazy"], echo=True, logprobs=1)
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    again = client.completions.create(model="toy", prompt=["the qu", "jumps"], n=2, max_tokens=30,
                                      temperature=0.5, seed=7, stop=["lazy"], echo=True, logprobs=1)
    assert [c.text for c in again.choices] == [c.text for c in completion.choices]  # seeded
    for choice in completion.choices:
        prompt = "the qu" if choice.index < 2 else "jumps"
        assert choice.text.startswith(prompt) and "lazy" not in choice.text
        logprobs = choice.logprobs
        assert logprobs is not None and "".join(logprobs.tokens) == choice.text  # prompt tokens scored too
        assert len(logprobs.token_logprobs) == len(logprobs.tokens)
        assert all(lp <= 0 for lp in logprobs.token_logprobs)
        assert logprobs.text_offset[:2] == [0, 1]


def test_streaming_concatenates_to_the_unary_text(base_url: str) -> None:
    client = sdk(base_url)
    chunks = list(client.completions.create(model="toy", prompt="the", max_tokens=40, temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == client.completions.create(model="toy", prompt="the", max_tokens=40, temperature=0).choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 40
    assert chunks[-1].usage.prompt_tokens == 3


def test_async_client_streamed_and_not(base_url: str) -> None:
    async def main() -> tuple[str, str]:
        async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0) as client:
            whole = await client.completions.create(model="toy", prompt="the qu", max_tokens=12, temperature=0)
            stream = await client.completions.create(model="toy", prompt="the qu", max_tokens=12, temperature=0,
                                                     stream=True)
            streamed = "".join([chunk.choices[0].text async for chunk in stream])
            return whole.choices[0].text, streamed

    whole, streamed = asyncio.run(main())
    assert whole == streamed == "ick brown fo"


def test_errors_arrive_as_the_sdks_typed_exceptions(base_url: str) -> None:
    client = sdk(base_url)
    with pytest.raises(openai.NotFoundError) as not_found:
        client.completions.create(model="nope", prompt="x")
    assert not_found.value.status_code == 404
    assert not_found.value.body["code"] == "not_found" and "toy-slow" in not_found.value.message
    with pytest.raises(openai.BadRequestError, match="max_new_tokens") as limit:
        client.completions.create(model="toy", prompt="x", max_tokens=1_000_000)
    assert limit.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model="toy", prompt="x", temperature=-1)
    with pytest.raises(openai.BadRequestError) as unsupported:
        client.completions.create(model="toy", prompt="x", presence_penalty=0.5)
    assert unsupported.value.body["param"] == "presence_penalty"
    with pytest.raises(openai.BadRequestError, match="token-id prompts"):
        client.completions.create(model="toy", prompt=[1, 2, 3])
    with pytest.raises(openai.BadRequestError, match="failed to load"):
        client.completions.create(model="toy-broken", prompt="x")
    with pytest.raises(openai.NotFoundError):  # the stream's errors come before its first event
        client.completions.create(model="nope", prompt="x", stream=True)


def test_neutral_values_of_unsupported_parameters_are_accepted(base_url: str) -> None:
    completion = sdk(base_url).completions.create(model="toy", prompt="the", max_tokens=3, temperature=0,
                                                  presence_penalty=0, frequency_penalty=0, best_of=1, user="me",
                                                  extra_body={"top_k": 1, "repetition_penalty": 1.0})
    assert completion.choices[0].text == " qu"
