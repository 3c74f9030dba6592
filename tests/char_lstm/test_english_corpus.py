"""The modern-English corpus (``rnnserve data english``): readers, cleaning, the reserved packages, the split
and layout on a tiny .deb built here, and ``<bos>`` before every document in training."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from rnnserve_plugins import debian_packages
from rnnserve_plugins.char_lstm import english
from rnnserve_plugins.char_lstm.data import encode_documents
from rnnserve_plugins.char_lstm.english import (
    CHARSET,
    EnglishSource,
    dedup_key,
    is_prose,
    normalise,
    split_of,
)
from rnnserve_plugins.char_lstm.english_readers import html_paragraphs, info_documents, man_paragraphs
from rnnserve_plugins.char_lstm.vocab import CharVocab
from rnnserve_plugins.debian_packages import RESERVED, ReservedSourceError, check_allowed

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "english_corpus"


@pytest.mark.parametrize("package", ["wesnoth-1.16-data", "debian-faq", "maint-guide", "developers-reference-de"])
def test_reserved_packages_cannot_be_a_source(package):
    with pytest.raises(ReservedSourceError):
        EnglishSource("x", ("manpages", package), r".*", "page")


def test_no_source_package_is_reserved():
    assert RESERVED == ("wesnoth*", "debian-faq*", "maint-guide*", "developers-reference*")
    packages = [p for source in english.sources() for p in source.packages]
    assert {"manpages", "manpages-dev", "python3.11-doc", "debian-reference-en", "coreutils"} <= set(packages)
    for package in [*packages, english.GROFF_PACKAGE]:
        assert check_allowed(package) == package


def test_normalise_makes_ascii_typography():
    assert normalise("“Smart”  quotes — it’s a café… and ‐ groff’s hyphen\u00a0here") == (
        "\"Smart\" quotes - it's a cafe... and - groff's hyphen here")
    assert set(normalise("naïve résumé «x» × 2")) <= CHARSET


@pytest.mark.parametrize(("text", "prose"), [
    ("The greeting is read from FILE when one is given; otherwise a built-in text is used.", True),
    ("tiny prints a short greeting to standard output and exits.", True),
    ("Short line.", False),  # too few words
    ("-a, --all print every greeting in the file", False),  # an option, no sentence end
    ("if (x == 0) { return y[i]; } else { z = $a; } # done;", False),  # code
    ("This heading has no sentence end at all here", False),
    ("See /usr/share/doc/tiny-doc/examples/greetings/very/long/path.txt and /usr/lib/x/y/z/aaaaaaaaaaaaaaa/b.so.",
     False),
])
def test_is_prose(text, prose):
    assert is_prose(normalise(text)) is prose


def test_man_page_keeps_the_body_prose_of_its_prose_sections():
    rendered = (FIXTURES / "tiny.1.txt").read_text()  # groff output of tiny.1 (see english.Groff.render)
    paragraphs = [p for p in map(normalise, man_paragraphs(rendered)) if is_prose(p)]
    assert paragraphs == [
        "tiny prints a short greeting to standard output and exits. It is meant as an example of a manual page "
        "that holds prose, options and a table.",
        "The greeting is read from FILE when one is given; otherwise a built-in text is used.",
        "The table below lists the exit codes:",
        "Greetings longer than a line are wrapped by the terminal, not by the program itself.",
    ]  # no NAME/SYNOPSIS/SEE ALSO, no option descriptions (indented), no table rows


def test_info_nodes_keep_unindented_paragraphs():
    docs = list(info_documents("tiny.info.gz", gzip.compress((FIXTURES / "tiny.info").read_bytes())))
    assert len(docs) == 1  # the Top node is a title page and menu
    assert docs[0][1] == [
        "The greetings that tiny prints come from a file, one per line, or from a built-in list when no file is "
        "named.  See Top, for more.",
        "The first greeting is printed unless the option asks for every one of them.",
    ]  # no heading, no example, no definition


def test_html_pages_keep_paragraphs_only():
    page = ("<html><head><title>T</title></head><body><nav><p>Home. Next page here now.</p></nav>"
            "<h1>Title</h1><p>First <code>real</code> paragraph of the page, with a link.</p>"
            "<pre>code = 1; print(code)</pre><table><tr><td>cell text here</td></tr></table>"
            "<ul><li>an item of a list</li></ul><p>Second paragraph.</p></body></html>")
    assert html_paragraphs(page) == ["First real paragraph of the page, with a link.", "Second paragraph."]


def test_split_is_stable_and_spread():
    keys = [dedup_key(f"Paragraph {i} of a long text.") for i in range(5000)]
    splits = [split_of(k) for k in keys]
    assert splits == [split_of(k) for k in keys]
    assert 0.01 < splits.count("test") / len(keys) < 0.03 and 0.01 < splits.count("val") / len(keys) < 0.03
    assert split_of(dedup_key("It's  the SAME text!")) == split_of(dedup_key("it's the same text"))


def _build_deb(tmp_path: Path, paragraphs: list[str]) -> Path:
    root = tmp_path / "root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: tiny-doc\nVersion: 1.0-1\nArchitecture: all\n"
                                             "Maintainer: Nobody <nobody@example.org>\nDescription: tiny docs\n")
    html_dir = root / "usr/share/doc/tiny-doc/html"
    html_dir.mkdir(parents=True)
    for page in range(4):
        body = "".join(f"<p>{p}</p>" for p in paragraphs[page::4])
        (html_dir / f"page{page}.html").write_text(f"<html><body><pre>x = 1</pre>{body}</body></html>")
    info = root / "usr/share/info"
    info.mkdir(parents=True)
    (info / "tiny.info.gz").write_bytes(gzip.compress((FIXTURES / "tiny.info").read_bytes()))
    (root / "usr/share/doc/tiny-doc/copyright").write_text(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-3+\n")
    cache = tmp_path / "cache"
    cache.mkdir()
    deb = cache / "tiny-doc_1.0-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return cache


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_prepare_writes_deduplicated_document_splits_and_a_manifest(tmp_path, monkeypatch):
    paragraphs = [f"Paragraph {i} says how the tiny program reads greeting number {i} from its file."
                  for i in range(400)]
    # The info file's second paragraph, in a page too: kept once, by the first source.
    paragraphs[7] = "The first greeting is printed unless the option asks for every one of them."
    cache = _build_deb(tmp_path, paragraphs)
    monkeypatch.setattr(english, "sources", lambda: (
        EnglishSource("pages", ("tiny-doc",), r"usr/share/doc/tiny-doc/html/.+\.html", "page"),
        EnglishSource("info", ("tiny-doc",), r"usr/share/info/.+", "info")))
    monkeypatch.setattr(debian_packages, "_candidate", lambda package: "1.0-1")
    monkeypatch.setattr(debian_packages.subprocess, "run", _no_apt(debian_packages.subprocess.run))
    out = tmp_path / "data"
    manifest = english.prepare(out, cache, log=lambda line: None)

    texts = {split: (out / f"{split}.txt").read_text() for split in ("train", "val", "test")}
    lines = {split: [line for line in text.split("\n") if line] for split, text in texts.items()}
    info_first = ("The greetings that tiny prints come from a file, one per line, or from a built-in list when no "
                  "file is named. See Top, for more.")
    found_all = sorted(p for found in lines.values() for p in found)
    assert found_all == sorted([*paragraphs, info_first])  # each once: the duplicate is gone
    for split, found in lines.items():
        assert found and all(split_of(dedup_key(p)) == split for p in found), split
    assert texts["train"].count("\n\n") == manifest["files"]["train.txt"]["documents"] - 1  # documents: empty line
    pages, info = manifest["sources"]["pages"], manifest["sources"]["info"]
    assert (pages["documents"], pages["duplicates"], info["documents"], info["duplicates"]) == (4, 0, 1, 1)
    assert pages["packages"][0]["version"] == "1.0-1" and pages["packages"][0]["licence"] == "GPL-3+"
    for split in ("train", "val", "test"):
        assert pages["chars"][split] + info["chars"][split] == len(texts[split].replace("\n\n", "\n"))
    assert (out / "test.pages.txt").read_text() + (out / "test.info.txt").read_text() != ""
    assert json.loads((out / "manifest.json").read_text())["files"]["test.txt"]["chars"] == len(texts["test"])


def _no_apt(run):
    def guarded(command, *args, **kwargs):
        assert command[0] != "apt-get", "a cached package was downloaded again"
        return run(command, *args, **kwargs)
    return guarded


def test_encode_documents_puts_bos_between_documents():
    vocab = CharVocab.build("abc.\n")
    bos = vocab.bos_id
    ids = encode_documents(vocab, "ab.\nc.\n\nba.\n\ncc.\n")
    assert ids.tolist() == [*vocab.encode("ab.\nc.\n")[0], bos, *vocab.encode("ba.\n")[0], bos,
                            *vocab.encode("cc.\n")[0]]
    austen = "One paragraph.\nAnother one.\n"  # no empty line: one document, as before
    vocab = CharVocab.build(austen)
    assert encode_documents(vocab, austen).tolist() == vocab.encode_tensor(austen).tolist()


def test_training_learns_how_documents_begin(tmp_path):
    """Every document starts with 'Q', which occurs nowhere else: after <bos> alone the model predicts it,
    and so does a real server's writing assistant and generator at the start of a document (``Suggest("")``,
    a Session after ``reset``, ``Generate("")``), and never in mid-text."""
    from rnnserve.ops.config import ModelSpec, ServerConfig
    from rnnserve.testing import plugin_host, running_server
    from rnnserve_client import Client
    from rnnserve_plugins.char_lstm.checkpoint import save_model
    from rnnserve_plugins.char_lstm.train import TrainConfig, train

    generator = torch.Generator().manual_seed(0)
    words = ["ab", "ba", "abba", "baab", "aab"]

    def document() -> str:
        picks = torch.randint(len(words), (int(torch.randint(3, 9, (1,), generator=generator)),), generator=generator)
        return "Q " + " ".join(words[i] for i in picks) + ".\n"

    data = tmp_path / "data"
    data.mkdir()
    for split, count in (("train", 1500), ("val", 40), ("test", 40)):
        (data / f"{split}.txt").write_text("\n".join(document() for _ in range(count)))
    config = TrainConfig(seq_len=32, batch_size=8, lr=2e-2, min_lr=2e-3, warmup_steps=5, max_steps=250, eval_every=250,
                         checkpoint_every=250, log_every=50, min_count=1, seed=3, threads=1)
    result = train(data, tmp_path / "run", {"embedding_dim": 8, "hidden_size": 32, "num_layers": 1, "dropout": 0.0},
                   config, quiet=True, write_card=False)
    model = result.model.eval()
    vocab = CharVocab.build((data / "train.txt").read_text())
    with torch.no_grad():
        logits, _ = model(torch.tensor([[vocab.bos_id]]), model.initial_state(1))
        start = torch.softmax(logits[0, -1], -1)
        logits, _ = model(torch.tensor([[vocab.bos_id, *vocab.encode("Q ab ")[0]]]), model.initial_state(1))
        mid_text = torch.softmax(logits[0, -1], -1)
    q = vocab.encode("Q")[0][0]
    # Training resets a stream's state before each <bos> it reads, so every document is learnt from the
    # zero state a served request starts in.
    assert start.argmax() == q and start[q] > 0.6  # documents begin with Q
    assert mid_text[q] < 0.05  # Q is never inside a document
    assert start[vocab.bos_id] < 0.05 and mid_text[vocab.bos_id] < 0.05  # <bos> is read, never a target

    save_model(tmp_path / "q-model", model, vocab)
    config = ServerConfig(default_models=False, models=(
        ModelSpec("q", "char-lstm", path=str(tmp_path / "q-model")),
        ModelSpec("q-assist", "writing-assistant", options={"language_model": "q", "lexicon_words": 0})))
    with running_server(config, plugin_host("char-lstm", "writing-assistant")) as server, \
            Client(server.target, timeout=60) as client:
        assert client.suggest("q-assist", "", max_suggestions=1)[0].text == "Q"
        assert all(not s.text.startswith("Q") for s in client.suggest("q-assist", "Q ab ba ", max_suggestions=3))
        with client.session("q-assist", kinds=("word",), max_suggestions=1, text="Q abba baab ") as session:
            assert session.suggestions[0].text != "Q"
            assert session.reset()[0].text == "Q"
        assert client.generate("q", "", max_new_tokens=1, temperature=0.0).text == "Q"
