"""HTTP against gRPC: the same work through both transports of one server process, in the same run.

One ``rnnserve serve`` process (its own process, so the load generator never shares its GIL)
serves gRPC and HTTP. The same requests go through each transport, in rounds whose order
rotates (round 1: gRPC, HTTP JSON, OpenAI; round 2: HTTP JSON, OpenAI, gRPC; ...), so that
whatever else the machine is doing falls on all of them alike:

* **unary generate** (``austen-char-lstm``, a 200-character prompt, 64 new characters,
  greedy): latency p50/p99 and requests/s one request at a time, and with C clients in a
  closed loop. gRPC ``Generate`` against ``POST /api/v1/generate`` (the same message as
  JSON) and ``POST /v1/completions`` (OpenAI's shape). Greedy output is checked to be
  the same through every transport.
* **concurrent streams** (S streams at once, 256 new characters each, temperature 0.8,
  the same seeds through every transport): aggregate chars/s and time to first chunk.
  gRPC ``GenerateStream`` against server-sent events from ``/api/v1/generate/stream`` and
  ``/v1/completions`` with ``stream: true``.
* **keystrokes** (``austen-writing-assistant``): per-keystroke latency of one session typing
  flat out, and of K sessions each typing one keystroke every 150 ms. gRPC
  ``Assistant.Session`` against the WebSocket Session at ``/api/v1/session`` (the same
  events as JSON frames).

Clients: ``rnnserve_client.AsyncClient`` (grpc.aio) for gRPC; aiohttp (C HTTP parser,
a connection pool without a limit: HTTP/1.1 needs one connection per concurrent request
where gRPC multiplexes them over one HTTP/2 connection) for HTTP; ``websockets`` for the
WebSocket. All in one asyncio loop in this process. The table reports this load
generator's CPU (``client CPU %``, of one core) beside the server's for each transport:
on a small machine the two compete for cores, so compare transports at similar client
cost, and read a transport's client CPU as part of its price.

    python -m benchmarks.http_vs_grpc [--rounds 3] [--requests 50] [--unary-concurrency 16] \\
        [--streams 64] [--stream-tokens 256] [--keystrokes 100] [--sessions 16] [--pace-ms 150]

``--quick``: seconds, the same path at small sizes with the shipped models (the test suite runs it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from benchmarks.common import QUICK_DATA, parse_args, percentile, print_machine, shipped_config, table
from benchmarks.server_process import ServerProcess, serve
from rnnserve_client import AsyncClient

PROMPT = ("It is a truth universally acknowledged, that a single man in possession of a good fortune, "
          "must be in want of a wife. However little known the feelings or views of such a man may be on his "
          "first entering a neighbourhood, this truth is")[:200]
LANGUAGE_MODEL = "austen-char-lstm"
ASSISTANT = "austen-writing-assistant"
#: The transports each kind of work goes through; the first is the reference of the "x gRPC" columns.
GENERATION = ("gRPC", "HTTP JSON", "HTTP OpenAI")
SESSIONS = ("gRPC", "WebSocket")
SEQUENTIAL = "unary generate, sequential"


class Typing(Protocol):
    """An open assistant session: type ``text`` at the end of its document, get its suggestions."""

    async def append(self, text: str) -> object: ...


class Transport(Protocol):
    """One way to send the same work to the server."""

    async def generate(self, prompt: str, max_new_tokens: int) -> str: ...

    def stream(self, prompt: str, max_new_tokens: int, seed: int) -> AsyncIterator[str]: ...

    def session(self) -> AbstractAsyncContextManager[Typing]: ...


class Grpc:
    """The work through ``rnnserve_client.AsyncClient`` (one HTTP/2 channel)."""

    def __init__(self, client: AsyncClient) -> None:
        self.client = client

    async def generate(self, prompt: str, max_new_tokens: int) -> str:
        result = await self.client.generate(LANGUAGE_MODEL, prompt, max_new_tokens=max_new_tokens, temperature=0.0)
        return result.text

    async def stream(self, prompt: str, max_new_tokens: int, seed: int) -> AsyncIterator[str]:
        async for chunk in self.client.generate_stream(LANGUAGE_MODEL, prompt, max_new_tokens=max_new_tokens,
                                                       temperature=0.8, seed=seed):
            yield chunk.text

    def session(self) -> AbstractAsyncContextManager[Typing]:
        return self.client.session(ASSISTANT, kinds=("word",), max_suggestions=3)


class HttpJson:
    """The work as ``/api/v1`` JSON (the RPCs' messages), the Session over the WebSocket."""

    def __init__(self, http: Any, base_url: str) -> None:
        self.http, self.base_url = http, base_url

    async def generate(self, prompt: str, max_new_tokens: int) -> str:
        body = {"model": LANGUAGE_MODEL, "prompt": prompt, "max_new_tokens": max_new_tokens, "temperature": 0.0}
        async with self.http.post(f"{self.base_url}/api/v1/generate", json=body) as response:
            response.raise_for_status()
            return str((await response.json())["completions"][0]["text"])

    async def stream(self, prompt: str, max_new_tokens: int, seed: int) -> AsyncIterator[str]:
        body = {"model": LANGUAGE_MODEL, "prompt": prompt, "max_new_tokens": max_new_tokens, "temperature": 0.8,
                "seed": seed}
        async for event in _sse(self.http, f"{self.base_url}/api/v1/generate/stream", body):
            yield event.get("text", "")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Typing]:
        from websockets.asyncio.client import connect

        url = "ws" + self.base_url.removeprefix("http") + "/api/v1/session"
        async with connect(url, subprotocols=["rnnserve.v1"], max_size=None) as socket:  # type: ignore[list-item]
            session = _SocketSession(socket)
            await session.send({"open": {"model": ASSISTANT, "options": {"kinds": ["SUGGESTION_KIND_WORD"],
                                                                         "max_suggestions": 3}}})
            yield session


class _SocketSession:
    """One WebSocket Session: a ``SessionRequest`` out, its ``SessionResponse`` back (parsed, as
    the gRPC client parses its protobuf reply)."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    async def send(self, request: dict[str, Any]) -> list[str]:
        await self.socket.send(json.dumps(request))
        response = json.loads(await self.socket.recv())
        if "error" in response:
            raise RuntimeError(f"WebSocket session failed: {response['error']}")
        return [s["text"] for s in response.get("suggestions", ())]

    async def append(self, text: str) -> list[str]:
        return await self.send({"append": {"text": text}})


class HttpOpenAI(HttpJson):
    """Generation through the OpenAI-compatible ``/v1/completions`` (the Session as :class:`HttpJson`'s)."""

    async def generate(self, prompt: str, max_new_tokens: int) -> str:
        body = {"model": LANGUAGE_MODEL, "prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0.0}
        async with self.http.post(f"{self.base_url}/v1/completions", json=body) as response:
            response.raise_for_status()
            return str((await response.json())["choices"][0]["text"])

    async def stream(self, prompt: str, max_new_tokens: int, seed: int) -> AsyncIterator[str]:
        body = {"model": LANGUAGE_MODEL, "prompt": prompt, "max_tokens": max_new_tokens, "temperature": 0.8,
                "seed": seed, "stream": True}
        async for event in _sse(self.http, f"{self.base_url}/v1/completions", body):
            yield "".join(choice.get("text", "") for choice in event.get("choices", ()))


async def _sse(http: Any, url: str, body: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
    """The JSON events of a server-sent event stream, up to ``data: [DONE]``."""
    async with http.post(url, json=body) as response:
        response.raise_for_status()
        async for line in response.content:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                return
            event = json.loads(data)
            if "error" in event:
                raise RuntimeError(f"stream failed: {event['error']}")
            yield event


@dataclass
class Measured:
    """What one (work, transport) pair measured, pooled over the rounds."""

    times: list[float] = field(default_factory=list)  # seconds: per request, first chunk or keystroke
    count: float = 0.0  # requests, characters or keystrokes done
    seconds: float = 0.0  # wall time of the measured phases
    client_cpu: float = 0.0  # this process's CPU seconds in them
    server_cpu: float = 0.0  # the server's CPU seconds in them
    outputs: set[str] = field(default_factory=set)  # greedy unary texts (should be one)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


async def timed(server: ServerProcess, measured: Measured, work: Callable[[], Awaitable[float]]) -> None:
    """Run ``work`` (which returns how many units it did) and add its wall and CPU time to ``measured``."""
    cpu0, server0, t0 = time.process_time(), server.cpu_seconds(), time.perf_counter()
    measured.count += await work()
    measured.seconds += time.perf_counter() - t0
    measured.client_cpu += time.process_time() - cpu0
    measured.server_cpu += server.cpu_seconds() - server0


async def unary(transport: Transport, clients: int, requests: int, tokens: int, out: Measured) -> float:
    """``clients`` closed-loop clients sending ``requests`` greedy generations in all."""
    left = requests

    async def client() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t = time.perf_counter()
            out.outputs.add(await transport.generate(PROMPT, tokens))
            out.times.append(time.perf_counter() - t)

    await asyncio.gather(*(client() for _ in range(clients)))
    return requests


async def streams(transport: Transport, count: int, tokens: int, round_: int, out: Measured) -> float:
    """``count`` streams at once; ``out.times`` gets each one's time to its first non-empty chunk."""
    chars = 0

    async def one(i: int) -> None:
        nonlocal chars
        start, first = time.perf_counter(), True
        async for text in transport.stream(PROMPT, tokens, seed=round_ * count + i):
            if text and first:
                out.times.append(time.perf_counter() - start)
                first = False
            chars += len(text)

    await asyncio.gather(*(one(i) for i in range(count)))
    return chars


async def keystrokes(transport: Transport, sessions: int, typed: int, pace: float, text: str,
                     out: Measured) -> float:
    """``sessions`` sessions each typing ``typed`` characters of ``text`` (from its own place), one
    every ``pace`` seconds (0: each as soon as the last is answered)."""

    async def typist(i: int) -> None:
        start = (i * 997) % max(1, len(text) - typed)
        async with transport.session() as session:
            await asyncio.sleep(pace * (i * 0.618 % 1))  # people do not start together
            due = time.perf_counter()
            for ch in text[start:start + typed]:
                t = time.perf_counter()
                await session.append(ch)
                out.times.append(time.perf_counter() - t)
                due += pace
                await asyncio.sleep(max(0.0, due - time.perf_counter()))

    await asyncio.gather(*(typist(i) for i in range(sessions)))
    return sessions * typed


async def measure(server: ServerProcess, args: argparse.Namespace, text: str) -> dict[tuple[str, str], Measured]:
    """Every work item through every transport, ``args.rounds`` times, the order rotating each round."""
    try:
        import aiohttp
    except ImportError as exc:  # a dev dependency (pyproject's dev extra), not the server's
        raise SystemExit("benchmarks.http_vs_grpc needs aiohttp: pip install -e '.[dev]'") from exc
    assert server.http_url is not None
    results: dict[tuple[str, str], Measured] = {}
    connector = aiohttp.TCPConnector(limit=0)  # no client-side queue: one connection per request in flight
    async with (AsyncClient(server.target, timeout=600) as client,
                aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http):
        grpc, json_api = Grpc(client), HttpJson(http, server.http_url)
        transports: dict[str, Transport] = dict(zip(GENERATION, (grpc, json_api, HttpOpenAI(http, server.http_url)),
                                                    strict=True))
        sockets: dict[str, Transport] = dict(zip(SESSIONS, (grpc, json_api), strict=True))
        for transport in transports.values():  # warm up: connections, first steps of both models
            await transport.generate(PROMPT, 8)
            async for _ in transport.stream(PROMPT, 8, seed=0):
                pass
        for transport in sockets.values():
            async with transport.session() as session:
                await session.append("a")

        works: list[tuple[str, dict[str, Transport], Callable[[Transport, int, Measured], Awaitable[float]]]] = [
            (SEQUENTIAL, transports,
             lambda t, r, m: unary(t, 1, args.requests, args.new_tokens, m)),
            (f"unary generate, {args.unary_concurrency} clients", transports,
             lambda t, r, m: unary(t, args.unary_concurrency, args.requests, args.new_tokens, m)),
            (f"{args.streams} streams", transports,
             lambda t, r, m: streams(t, args.streams, args.stream_tokens, r, m)),
            ("keystrokes, 1 session", sockets,
             lambda t, r, m: keystrokes(t, 1, args.keystrokes, 0.0, text, m)),
            (f"keystrokes, {args.sessions} sessions every {args.pace_ms:g} ms", sockets,
             lambda t, r, m: keystrokes(t, args.sessions, args.session_keystrokes, args.pace_ms / 1e3, text, m)),
        ]
        for round_ in range(args.rounds):
            for work, chosen, run in works:
                names = list(chosen)
                names = names[round_ % len(names):] + names[:round_ % len(names)]
                for name in names:
                    measured = results.setdefault((work, name), Measured())
                    await timed(server, measured,
                                lambda run=run, t=chosen[name], r=round_, m=measured: run(t, r, m))
            print(f"  round {round_ + 1}/{args.rounds} done", flush=True)
    return results


def report(results: dict[tuple[str, str], Measured]) -> list[tuple[object, ...]]:
    """The table's rows: each work item's transports, the first (gRPC) the reference of the ratios."""
    rows: list[tuple[object, ...]] = []
    reference: dict[str, Measured] = {}
    for (work, name), m in results.items():
        ref = reference.setdefault(work, m)
        unit = "chars/s" if "streams" in work else "keys/s" if "keystrokes" in work else "req/s"
        p50, ref_p50 = percentile(m.times, 50), percentile(ref.times, 50)
        rows.append((work, name, len(m.times), p50 * 1e3, percentile(m.times, 99) * 1e3, m.rate, unit,
                     p50 / ref_p50 if ref_p50 else float("nan"), m.rate / ref.rate if ref.rate else float("nan"),
                     100 * m.client_cpu / m.seconds, 100 * m.server_cpu / m.seconds,
                     1e3 * m.server_cpu / m.count if m.count else float("nan")))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each running every work item through "
                        "every transport, the transports' order rotating")
    parser.add_argument("--requests", type=int, default=50, help="unary requests per transport per round")
    parser.add_argument("--new-tokens", type=int, default=64, help="new characters per unary request")
    parser.add_argument("--unary-concurrency", type=int, default=16, help="clients of the concurrent unary row")
    parser.add_argument("--streams", type=int, default=64, help="concurrent streams")
    parser.add_argument("--stream-tokens", type=int, default=256, help="new characters per stream")
    parser.add_argument("--keystrokes", type=int, default=100, help="keystrokes of the one session typing flat out")
    parser.add_argument("--sessions", type=int, default=16, help="concurrent paced sessions")
    parser.add_argument("--session-keystrokes", type=int, default=80, help="keystrokes each paced session types")
    parser.add_argument("--pace-ms", type=float, default=150.0, help="ms between a paced session's keystrokes")
    parser.add_argument("--text", type=Path, default=None,
                        help="held-out text the sessions type (default: the committed Austen slice's test and "
                             "validation text, tests/data/austen_slice)")
    parser.add_argument("--torch-threads", type=int, default=None, help="server torch threads (default: per core)")
    args = parse_args(parser, argv, quick={"rounds": 2, "requests": 3, "new_tokens": 16, "unary_concurrency": 2,
                                           "streams": 4, "stream_tokens": 16, "keystrokes": 4, "sessions": 2,
                                           "session_keystrokes": 3, "pace_ms": 20.0})
    print_machine()
    text = (args.text.read_text() if args.text else
            (QUICK_DATA / "test.txt").read_text() + (QUICK_DATA / "val.txt").read_text())
    from benchmarks.assistant import language_model_of

    config = shipped_config(*dict.fromkeys([LANGUAGE_MODEL, language_model_of(ASSISTANT), ASSISTANT]))
    if args.torch_threads:
        config = config.replace("[server]\n", f"[server]\ntorch_threads = {args.torch_threads}\n", 1)
    with serve(config, http=True) as server:
        results = asyncio.run(measure(server, args, text))
    # One request at a time, every request reads alone: its greedy text must not depend on the transport.
    # (Concurrent requests may differ in reduced precision, where a batch's neighbours move the arithmetic.)
    alone = {name: m.outputs for (work, name), m in results.items() if work == SEQUENTIAL}
    same = len(set().union(*alone.values())) == 1
    print(f"\n{LANGUAGE_MODEL}: {len(PROMPT)}-character prompt; unary {args.new_tokens} new characters greedy, "
          f"{args.requests} requests per transport per round; {args.streams} streams of {args.stream_tokens} "
          f"characters (temperature 0.8, the same seeds through each transport); {ASSISTANT}: one session typing "
          f"{args.keystrokes} keystrokes flat out, {args.sessions} typing {args.session_keystrokes} each; "
          f"{args.rounds} rounds, transports in rotating order. Latency: per request, time to first chunk, "
          f"per keystroke. CPU: % of one core over the measured phases (client: this load generator), and the "
          f"server's CPU time per request, character or keystroke")
    print(table(["work", "transport", "samples", "p50 ms", "p99 ms", "rate", "unit", "p50 x gRPC", "rate x gRPC",
                 "client CPU %", "server CPU %", "server CPU ms/unit"], report(results)))
    print(f"greedy unary output, one request at a time, the same through every transport: {'yes' if same else 'NO'}"
          + ("" if same else f" ({ {name: sorted(texts) for name, texts in alone.items()} })"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
