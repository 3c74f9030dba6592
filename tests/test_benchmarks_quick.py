"""Every benchmark's ``--quick`` mode, so the benchmarks cannot rot unnoticed.

Each runs its own ``main`` as ``python -m benchmarks.NAME --quick`` would: a real
``rnnserve serve`` process serving the shipped models, real client calls, the printed
report, only at small sizes. The report's tables are read back and checked for what
must hold whatever the machine's speed (rates above zero, every row present, the
assistant beating its unigram baseline, a leak-free soak); timings are not compared.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks import (
    assistant,
    assistant_window,
    generation,
    http_vs_grpc,
    int8,
    lm_eval,
    replicas,
    soak,
    translation,
)

pytestmark = pytest.mark.timeout(300)


def run(capsys: pytest.CaptureFixture[str], main, *args: str) -> str:  # type: ignore[no-untyped-def]
    """Run a benchmark's ``main(["--quick", *args])``; its stdout (the report) after checking it succeeded
    and that the report opens with the machine it ran on (CPU model, cores, ISA flags, kernels, load)."""
    status = main(["--quick", *args])
    out = capsys.readouterr().out
    assert status == 0, out
    assert re.match(r"machine: cpu: .+, \d+ cores; avx2=(yes|no) .*amx_int8=(yes|no); torch .+: kernels .+; "
                    r".*load average", out), out
    return out


def table(out: str, first_header: str) -> list[list[str]]:
    """The rows of the printed table whose header line starts with ``first_header`` (cells split
    on runs of two or more spaces, as ``benchmarks.common.table`` prints them); the callers
    check that every row they expect is there."""
    lines = out.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(first_header)), None)
    assert start is not None, f"no table headed {first_header!r} in:\n{out}"
    header = re.split(r"\s{2,}", lines[start].strip())
    assert set(lines[start + 1].replace(" ", "")) == {"-"}, lines[start + 1]
    rows = []
    for line in lines[start + 2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):  # the table ended (a blank line or the report's next sentence)
            break
        rows.append(cells)
    assert rows, f"table {first_header!r} is empty:\n{out}"
    return rows


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def test_generation(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, generation.main, "--variants", "default,int8")
    rows = table(out, "server")
    expected = [("rnnserve", "1"), ("rnnserve", "4"), ("naive", "1"), ("rnnserve default", "1"),
                ("rnnserve default", "4"), ("rnnserve int8", "1"), ("rnnserve int8", "4")]
    assert [(r[0], r[1]) for r in rows] == expected
    for row in rows:
        chars_per_s, batch = number(row[2]), number(row[7])
        assert chars_per_s > 0 and batch >= 1, row
    assert re.search(r"prompt 200 chars, 16 new chars per stream; server torch threads \d+ of \d+ cores", out), out
    assert re.search(r"peaks \(256\^2 matrix products\): float32 [\d,.]+ GFLOP/s on \d+ threads -> fp32 roofline "
                     r"[\d,]+ chars/s; float32 [\d,.]+ GFLOP/s on \d+ cores -> machine roofline [\d,]+ chars/s; "
                     r"bfloat16 [\d,.]+ GFLOP/s -> [\d,]+ chars/s; int8 [\d,.]+ GOP/s -> [\d,]+ chars/s", out), out
    # The default variant is the shipped spec as `rnnserve serve` loads it; the report names its precision.
    default = re.search(r"^  default: (\{.*?\}) runs in (\w+)( \(.+\))?$", out, re.M)
    assert default and default.group(1) == str(generation.shipped_default()[0]), out
    versus = table(out, "model")
    assert [(r[0], r[1]) for r in versus] == expected
    precisions = {"rnnserve": "float32", "naive": "float32", "rnnserve default": default.group(2),
                  "rnnserve int8": "int8"}
    for row, served in zip(versus, rows, strict=True):
        name, _, precision, chars_per_s, bare, ratio, roofline, machine_roofline, own = row
        assert precision == precisions[name], row
        assert number(chars_per_s) == number(served[2]) and number(bare) > 0, row  # the same run, side by side
        assert number(ratio) == pytest.approx(number(chars_per_s) / number(bare), rel=0.01, abs=0.01), row
        assert number(roofline) > 0 and number(machine_roofline) > 0, row
        assert (own == "-") if precision == "float32" else number(own) > 0, row


def test_generation_default_is_the_server_with_no_options() -> None:
    with pytest.raises(SystemExit):  # --torch-threads would write the torch_threads the default server lacks
        generation.main(["--quick", "--variants", "default", "--torch-threads", "1"])


def test_translation_with_bleu_through_the_server(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from rnnserve_plugins.gru_translator.evaluate import PARTS  # the test parts `rnnserve data en-de` writes

    pairs = [("Good morning.", "Guten Morgen."), ("The house is small.", "Das Haus ist klein."),
             ("Where is the station?", "Wo ist der Bahnhof?")]
    for part in PARTS:
        for lang, index in (("en", 0), ("de", 1)):
            (tmp_path / f"{part}.{lang}").write_text("".join(p[index] + "\n" for p in pairs))
    out = run(capsys, translation.main, "--bleu", str(tmp_path))
    rows = table(out, "server")
    assert [(r[0], r[1]) for r in rows] == [
        ("one-at-a-time, beam 1", "4"), ("rnnserve, beam 1", "1"), ("rnnserve, beam 1", "4"),
        ("one-at-a-time, beam 3", "4"), ("rnnserve, beam 3", "1"), ("rnnserve, beam 3", "4")]
    assert all(number(r[2]) > 0 for r in rows)
    bleu = table(out, "part")
    assert [(r[0], r[1]) for r in bleu] == [(part, "3") for part in PARTS]
    assert all(number(r[4]) > 10 for r in bleu), bleu  # chrF: the shipped model translates these passably
    assert "signatures: BLEU nrefs:1" in out


def test_assistant(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, assistant.main)
    ksr = table(out, "metric")
    assert [r[0] for r in ksr] == ["KSR@1", "KSR@3"]
    assert [r[1] for r in ksr] == ["austen-writing-assistant"] * 2
    for _, _assistant, model, unigram, wordfreq, vs_unigram, vs_wordfreq, _seconds in ksr:
        assert 0 < number(model) < 1 and number(model) > number(unigram), ksr  # the model beats the baseline
        # The wordfreq baseline on the slice's first 60 characters ("This friend, and Sir Walter, ..."):
        # 0.117 at k=1 and 0.233 at k=3 (it completes "This", "and", "did", "not", ... from common words).
        assert 0.05 < number(wordfreq) < 0.5, ksr
        assert number(vs_unigram) == pytest.approx(number(model) / number(unigram), abs=2e-3), ksr
        assert number(vs_wordfreq) == pytest.approx(number(model) / number(wordfreq), abs=2e-3), ksr
    assert number(ksr[1][2]) >= number(ksr[0][2]), ksr  # three suggestions save at least what one does
    latency = table(out, "path")
    assert [r[0] for r in latency] == ["session", "suggest", "session, no search ahead", "session, no word nodes",
                                       "suggest, no prefix cache"]
    assert all(number(r[1]) > 0 for r in latency), latency
    concurrent = table(out, "assistant")
    assert [(r[0], r[1], r[2]) for r in concurrent] == [
        (name, "2", "closed loop") for name in ("shipped", "no search ahead", "neither (previous)", "one at a time")]
    # p50 ms, the range of the runs' medians, the share answered ahead, rows per lent step
    assert all(number(r[3]) > 0 and number(r[7]) >= 1 for r in concurrent), concurrent
    assert all(0 < number(r[5].split("-")[0]) <= number(r[5].split("-")[1]) for r in concurrent), concurrent
    assert all(0 <= number(r[6].rstrip("%")) <= 100 for r in concurrent), concurrent


def test_lm_eval(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, lm_eval.main)
    found = re.search(r"austen-char-lstm on test\.txt \((\d+) characters.*: ([\d.]+) nats/char = ([\d.]+) bits/char",
                      out)
    assert found, out
    assert int(found.group(1)) == len((lm_eval.QUICK_DATA / "test.txt").read_text())
    assert 0.5 < float(found.group(3)) < 2.5, out  # the card says ~1.67 on all of Persuasion
    assert "test_bits_per_char=" in out  # the model card, read through GetModel


def test_int8(capsys: pytest.CaptureFixture[str]) -> None:
    """Both int8 implementations against float32: every row, logits close to float32's, reads timed."""
    out = run(capsys, int8.main)
    names = ("float32", "int8 fbgemm", "int8 onednn")
    rows = table(out, "step")
    assert [(r[0], r[1]) for r in rows] == [(name, batch) for batch in ("1", "4") for name in names]
    assert all(float(r[3].replace(",", "")) > 0 for r in rows)
    assert all(float(r[4]) < 0.5 for r in rows)  # logits within a few tenths of float32's
    reads = table(out, "read")
    assert [(r[0], r[1]) for r in reads] == [(name, batch) for batch in ("1", "4") for name in names]


def test_replicas(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, replicas.main, "--workload", "generate")
    rows = table(out, "server")
    assert [(r[0], r[1]) for r in rows] == [("one process x 2 torch threads", "2"),
                                           ("2 replicas x 1 torch threads", "2")]
    assert all(number(r[2]) > 0 for r in rows)
    shares = [int(s) for s in rows[1][6].split("/")]
    assert len(shares) == 2 and 98 <= sum(shares) <= 102, rows  # both replicas' CPU time was measured


def test_soak(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, soak.main)
    rows = {r[0]: r for r in table(out, "rpc")}
    assert "note:" not in out, out  # every backend it uses was READY (none skipped)
    assert len(rows.keys() - {"total"}) >= 3, rows  # a mix of RPCs in a few seconds
    assert int(rows["total"][1]) > 0 and rows["total"][4] == "0", rows  # calls succeeded; none failed
    assert "leak check: none; server answering: True" in out
    levels = re.search(r"server log lines: (\{.*\})", out)
    assert levels and "'INFO'" in levels.group(1), out  # the server's log was read (its startup lines at least)


def test_assistant_window(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, assistant_window.main)
    rows = table(out, "window W")
    windows = [int(r[0]) for r in rows]
    assert windows == sorted(windows) and windows[0] == 16, rows  # tried ascending, from the first
    for row in rows:
        assert 0.0 <= number(row[1]) <= 1.0 and 0 < number(row[2]) <= int(row[0]), row  # reads at most W
    assert re.search(r"smallest W with >= 99% agreement: (\d+|none tried) \(the shipped default: \d+\)", out), out
    timed = table(out, "operation")
    assert [r[0] for r in timed] == ["Session open", "delete past the ring", "Suggest, no cached prefix"], timed
    assert all(number(r[2]) > 0 for r in timed), timed


def test_http_vs_grpc(capsys: pytest.CaptureFixture[str]) -> None:
    out = run(capsys, http_vs_grpc.main)
    rows = table(out, "work")
    generation, sessions = http_vs_grpc.GENERATION, http_vs_grpc.SESSIONS
    expected = [(work, name, str(samples), unit) for work, names, samples, unit in (
        ("unary generate, sequential", generation, 6, "req/s"),  # --quick: 3 requests x 2 rounds
        ("unary generate, 2 clients", generation, 6, "req/s"),
        ("4 streams", generation, 8, "chars/s"),  # the first chunks of 4 streams x 2 rounds
        ("keystrokes, 1 session", sessions, 8, "keys/s"),  # 4 keystrokes x 2 rounds
        ("keystrokes, 2 sessions every 20 ms", sessions, 12, "keys/s"),  # 2 sessions x 3 keystrokes x 2 rounds
    ) for name in names]
    assert [(r[0], r[1], r[2], r[6]) for r in rows] == expected, rows
    for row in rows:  # measured, not asserted: only that every figure is there and positive
        p50, p99, rate = number(row[3]), number(row[4]), number(row[5])
        p50_ratio, rate_ratio, client_cpu, server_cpu, server_cpu_per_unit = map(number, row[7:])
        assert 0 < p50 <= p99 and rate > 0 and p50_ratio > 0 and rate_ratio > 0, row
        assert client_cpu > 0 and server_cpu >= 0 and server_cpu_per_unit >= 0, row  # server CPU: clock ticks
        if row[1] == "gRPC":  # each work's reference
            assert p50_ratio == rate_ratio == 1.0, row
    assert "greedy unary output, one request at a time, the same through every transport: yes" in out, out
