"""docs/plugins.md: its tutorial builds examples/plugins/jordan_lm file for file, and its snippets run."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "plugins.md").read_text()
EXAMPLE = REPO / "examples" / "plugins" / "jordan_lm"
FILE_BLOCK = re.compile(r"^\*\*`([^`]+)`\*\*\n\n```[a-z]*\n(.*?)^```$", re.M | re.S)


def test_the_tutorial_shows_every_file_of_the_example_as_it_is() -> None:
    shown = dict(FILE_BLOCK.findall(DOC))
    sources = {str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*") if p.suffix in (".py", ".toml")
               and not {"build", "__pycache__"} & set(p.parts) and ".egg-info" not in str(p)}
    assert set(shown) == sources
    for path, text in shown.items():
        assert text == (EXAMPLE / path).read_text(), f"docs/plugins.md and {EXAMPLE / path} differ"


def test_the_contract_and_hook_snippets_run_and_print_what_they_say() -> None:
    section = DOC[DOC.index("## 2. The contracts"): DOC.index("## 3. Tutorial")]
    namespace: dict[str, object] = {"__name__": "tutorial"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        for code in re.findall(r"^```python\n(.*?)^```$", section, re.M | re.S):
            exec(compile(code, "docs/plugins.md", "exec"), namespace)
    expected = re.findall(r"# (\S.*)$", "\n".join(re.findall(r"print\(.*\)\)?  # .*$|args\.run.*$", section, re.M)),
                          re.M)
    printed = out.getvalue()
    for value in expected:
        value = value.removeprefix("prints ").strip('"')
        assert value in printed, (value, printed)
    assert "bcde" in printed  # the stream
