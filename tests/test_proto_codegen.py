"""The committed wire types are exactly what scripts/gen_proto.py generates from proto/,
with the generator that constraints.txt pins (a newer grpcio-tools writes other files)."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "clients" / "python" / "rnnserve_client" / "v1"
#: The distributions whose version decides the generated code.
GENERATORS = ("grpcio-tools", "protobuf")


def pinned(distribution: str) -> str:
    """The version constraints.txt pins for ``distribution``."""
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / "constraints.txt").read_text(), flags=re.M))
    assert distribution in pins, f"constraints.txt must pin {distribution}: it decides the generated code"
    return pins[distribution]


@pytest.mark.parametrize("distribution", GENERATORS)
def test_the_installed_generator_is_the_pinned_one(distribution: str) -> None:
    assert version(distribution) == pinned(distribution), \
        f"{distribution} {version(distribution)} is installed but constraints.txt pins {pinned(distribution)}: " \
        "run ./scripts/bootstrap"


def test_generated_code_is_current(tmp_path: Path) -> None:
    used = ", ".join(f"{d} {version(d)}" for d in GENERATORS)
    print(f"generated with {used}")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_proto.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True, timeout=120)
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in COMMITTED.iterdir() if p.name != "__init__.py" and p.is_file()}
    assert generated.keys() == committed.keys()
    stale = [name for name in generated if generated[name] != committed[name]]
    assert not stale, f"run scripts/gen_proto.py: {stale} differ from what proto/ gives with {used}"


DECLARATION = re.compile(r"^\s*(message|service|rpc|enum|oneof) |^\s*(optional |repeated )?[\w.<>, ]+ \w+ = \d+;")


def test_every_message_field_and_rpc_is_documented() -> None:
    undocumented = []
    for proto in sorted((ROOT / "proto" / "rnnserve" / "v1").glob("*.proto")):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            if DECLARATION.match(line) and not lines[i - 1].strip().startswith("//"):
                undocumented.append(f"{proto.name}:{i + 1}: {line.strip()}")
    assert not undocumented, "\n".join(undocumented)
