"""The committed wire types are exactly what scripts/gen_proto.py generates from proto/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "clients" / "python" / "rnnserve_client" / "v1"


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in COMMITTED.iterdir() if p.name != "__init__.py" and p.is_file()}
    assert generated.keys() == committed.keys()
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"run scripts/gen_proto.py: {stale} differ from proto/"


DECLARATION = re.compile(r"^\s*(message|service|rpc|enum|oneof) |^\s*(optional |repeated )?[\w.<>, ]+ \w+ = \d+;")


def test_every_message_field_and_rpc_is_documented() -> None:
    undocumented = []
    for proto in sorted((ROOT / "proto" / "rnnserve" / "v1").glob("*.proto")):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            if DECLARATION.match(line) and not lines[i - 1].strip().startswith("//"):
                undocumented.append(f"{proto.name}:{i + 1}: {line.strip()}")
    assert not undocumented, "\n".join(undocumented)
