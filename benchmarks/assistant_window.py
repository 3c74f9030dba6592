"""Writing assistant on long documents: the read window W, and opening a Session on 100,000 characters.

A recurrent state forgets, so the assistant reads only the last W characters of a long
document (from a line or word start, from the model's start state; option
``window_chars``, ``states.window_start``) when it opens a Session, answers ``Suggest``
with no cached prefix, or deletes past its checkpoint ring. This chooses W by
measurement and times what it buys.

Agreement: keystroke positions drawn uniformly from held-out text (*Persuasion*, the
char-LSTM's test novel), each past the largest W tried; at each, the assistant's
suggestions (word completion, 3, as ``rnnserve write`` asks; the shipped assistant's
options: lexicon, document cache) from the state of reading the whole text before it,
against those from the state of reading only its window. A keystroke agrees when the
suggested words are the same, in the same order. W is the smallest window with at
least 99% agreement (it and every larger one tried). In-process, with the shipped
``austen-char-lstm-int8``, reading one character per step (``read_steps``: the int8
model's numbers depend on how a read is cut, so both readings are cut the same way); the
*noise floor* printed with it is how often reading the same window in one call instead
changes the suggestions.

Timing: through a real server serving the shipped assistant (its default W): opening a
Session on a 100,000-character document (to its first suggestions), a delete past the
checkpoint ring (3,000 characters), and ``Suggest`` on 100,000 characters no cached
prefix covers; the load average is printed beside them (the machine may be busy).

    python -m benchmarks.assistant_window --data runs/austen/data [--chars 60000] [--positions 300]

``--quick``: seconds, the same path at small sizes on the committed Austen slice.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import random
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import QUICK_DATA, config_toml, parse_args, print_machine, shipped_models, table
from benchmarks.server_process import serve
from rnnserve.backends import LanguageModel, SuggestionKind, SuggestOptions
from rnnserve.host.plugins import load_plugins
from rnnserve.ops.config import ModelSpec
from rnnserve.runtime.step_programs import run_alone
from rnnserve.testing.hosts import LocalContext
from rnnserve_client import Client
from rnnserve_plugins.writing_assistant.backend import WINDOW_CHARS, WritingAssistant, create_backend
from rnnserve_plugins.writing_assistant.states import TextState, read, start_state, window_start
from rnnserve_plugins.writing_assistant.suggest import typed_word

LANGUAGE_MODEL = "austen-char-lstm-int8"
#: The shipped assistant on it (the window is measured on Austen text).
ASSISTANT = "austen-writing-assistant"
#: Windows tried, ascending.
WINDOWS = (64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)


def load_assistant(**options: object) -> tuple[LanguageModel, WritingAssistant]:
    """The shipped language model and the writing assistant on it, in-process."""
    host = load_plugins()
    spec = next((s for s in host.models if s.name == LANGUAGE_MODEL), None)
    if spec is None:
        raise SystemExit(f"no shipped model {LANGUAGE_MODEL!r} among the installed plugins'")
    model = host.backends[spec.backend][0](spec, LocalContext())
    assert isinstance(model, LanguageModel)
    assistant = create_backend(ModelSpec("wa", "writing-assistant", options={"language_model": LANGUAGE_MODEL,
                                                                             **options}),
                               LocalContext(language_models={LANGUAGE_MODEL: model}))
    assert isinstance(assistant, WritingAssistant)
    return model, assistant


def read_steps(model: LanguageModel, start: TextState, text: str) -> TextState:
    """``start`` after ``text``, one ``model.step`` per character at batch 1.

    Reading the same text in pieces of different lengths does not give the same numbers with
    an int8 model (the activations' quantization scale is taken over each call's input:
    reading 3,000 characters in one call or in 32-character pieces moved cell states by up
    to 0.8 and logits by 0.3). One character per call is the same computation however the
    reading is cut, so what differs between the whole text and its window is the window."""
    state, logits = start.state, start.logits
    for token in model.vocab.encode(text)[0]:
        step_logits, state = model.step(torch.tensor([token]), state)
        logits = step_logits[0]
    return TextState(state, logits.clone())


def read_through(model: LanguageModel, text: str, points: list[int]) -> dict[int, TextState]:
    """The states after ``text[:q]`` for each q of ``points``: one pass over the text, by steps."""
    states, current, pos = {}, start_state(model), 0
    for q in sorted(set(points)):
        current, pos = read_steps(model, current, text[pos:q]), q
        states[q] = current
    return states


def agreement(model: LanguageModel, assistant: WritingAssistant, text: str, positions: list[int],
              windows: list[int]) -> tuple[list[tuple[int, float, float]], float]:
    """(W, agreement, mean characters read) per window W, until two in a row reach 99%; and the
    int8 noise floor: the agreement of reading the largest of those windows by steps and in
    one call (what a server does), the same text both times."""
    options = SuggestOptions(kinds=(SuggestionKind.WORD,), max_suggestions=3)
    points = {p: p - len(typed_word(text[:p])) for p in positions}  # where the word being typed starts

    def words(p: int, state: TextState) -> list[str]:
        document = text[:p]

        def state_at(n: int) -> TextState:
            assert n == points[p], (n, points[p])
            return state

        return [s.text for s in run_alone(model, assistant.suggester.suggest(document, options, state_at))]

    full_states = read_through(model, text, list(points.values()))
    full = {p: words(p, full_states[q]) for p, q in points.items()}
    results: list[tuple[int, float, float]] = []
    reached, start = 0, start_state(model)
    for window in windows:
        begin = {p: window_start(text[:q], window) for p, q in points.items()}
        same = sum(words(p, read_steps(model, start, text[begin[p]:points[p]])) == full[p] for p in positions)
        results.append((window, same / len(positions), statistics.mean(points[p] - begin[p] for p in positions)))
        reached = reached + 1 if results[-1][1] >= 0.99 else 0
        if reached == 2:
            break
    window = results[-1][0]
    begin = {p: window_start(text[:q], window) for p, q in points.items()}
    floor = sum(words(p, read(model, start, text[begin[p]:points[p]]))
                == words(p, read_steps(model, start, text[begin[p]:points[p]])) for p in positions)
    return results, floor / len(positions)


def timings(target_config: str, document: str, other: str, repeats: int) -> dict[str, list[float]]:
    """Seconds: Session open (to first suggestions), a delete past the ring, Suggest with no cached prefix."""
    out: dict[str, list[float]] = {"open": [], "delete": [], "suggest": []}
    with serve(target_config) as srv, Client(srv.target, timeout=600) as client:
        client.suggest(ASSISTANT, "It is a truth univ")  # warm
        for i in range(repeats):
            doc = document[i: i + len(document) - repeats]  # a different text each time: nothing cached helps
            t = time.perf_counter()
            session = client.session(ASSISTANT, kinds=("word",), max_suggestions=3, text=doc).open()
            out["open"].append(time.perf_counter() - t)
            t = time.perf_counter()
            session.delete(3000)
            out["delete"].append(time.perf_counter() - t)
            session.close()
            t = time.perf_counter()
            client.suggest(ASSISTANT, other[i: i + len(other) - repeats], max_suggestions=3)
            out["suggest"].append(time.perf_counter() - t)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="output of `rnnserve data austen` (required unless --quick)")
    parser.add_argument("--chars", type=int, default=60_000, help="characters of held-out text to draw positions from")
    parser.add_argument("--positions", type=int, default=300, help="keystroke positions compared")
    parser.add_argument("--windows", default=",".join(map(str, WINDOWS)), help="windows W to try, ascending")
    parser.add_argument("--doc-chars", type=int, default=100_000, help="document length for the timings")
    parser.add_argument("--repeats", type=int, default=3, help="timings per operation")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--server-threads", default="0,1",
                        help="torch threads of the timed servers, one server each (0: the server's default)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the in-process agreement runs")
    args = parse_args(parser, argv, quick={"data": QUICK_DATA, "chars": 280, "positions": 8, "windows": "16,32,64",
                                           "doc_chars": 4000, "repeats": 1, "server_threads": "1"})
    print_machine()
    if args.data is None:
        parser.error("--data is required (or --quick, which uses the committed test slice)")
    test = (args.data / "test.txt").read_text()
    windows = [int(w) for w in args.windows.split(",")]
    text = test[: args.chars]
    first = min(len(text) - 1, windows[-1] + 1)  # every window tried cuts the text before each position
    positions = sorted(random.Random(args.seed).sample(range(first, len(text) + 1), args.positions))
    load = os.getloadavg()
    t = time.perf_counter()
    torch.set_num_threads(args.threads)
    model, assistant = load_assistant()
    with torch.inference_mode():
        rows, floor = agreement(model, assistant, text, positions, windows)
    chosen = next((w for i, (w, a, _) in enumerate(rows) if all(r[1] >= 0.99 for r in rows[i:])), None)
    print(f"Suggestions (word, 3) from a window of the text against the whole text, at {len(positions)} keystroke "
          f"positions of {len(text):,} characters of Persuasion (held out), {LANGUAGE_MODEL}; "
          f"{time.perf_counter() - t:.0f} s, load average {load[0]:.1f} at the start")
    print(table(["window W", "agreement", "chars read"], [(w, f"{a:.4f}", f"{r:,.0f}") for w, a, r in rows]))
    print(f"smallest W with >= 99% agreement: {chosen if chosen is not None else 'none tried'} "
          f"(the shipped default: {WINDOW_CHARS})")
    print(f"int8 noise floor: reading the last window ({rows[-1][0]}) in one call, as a server does, against by "
          f"steps: the same suggestions at {floor:.4f} of the positions")
    document = (test * (args.doc_chars // len(test) + 2))[: args.doc_chars + args.repeats]
    rotated = test[len(test) // 2:] + test[: len(test) // 2]  # another text of the same novel
    other = (rotated * (args.doc_chars // len(test) + 2))[: args.doc_chars + args.repeats]
    rows = []
    for threads in (int(n) for n in args.server_threads.split(",")):
        config = dataclasses.replace(shipped_models(LANGUAGE_MODEL, ASSISTANT), torch_threads=threads or None)
        load = os.getloadavg()
        times = timings(config_toml(config), document, other, args.repeats)
        after = os.getloadavg()
        for name, key in (("Session open", "open"), ("delete past the ring", "delete"),
                          ("Suggest, no cached prefix", "suggest")):
            rows.append((name, threads or "default", statistics.median(times[key]), max(times[key]),
                         f"{load[0]:.1f} / {after[0]:.1f}"))
    print(f"\n{args.doc_chars:,}-character document, shipped assistant (W = {WINDOW_CHARS}), through a server "
          f"({args.repeats} each; {os.cpu_count()} cores; load average before / after each server's run)")
    print(table(["operation", "torch threads", "median s", "max s", "load"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
