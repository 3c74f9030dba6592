"""Regenerate the Python wire types in clients/python/rnnserve_client/v1 from proto/.

protoc names generated imports after the proto package path (``rnnserve.v1``); the
stubs live in the client distribution as ``rnnserve_client.v1``, so the imports are
rewritten. ``tests/test_proto_codegen.py`` checks the committed files are current.

Usage: python scripts/gen_proto.py [--out DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUT = ROOT / "clients" / "python" / "rnnserve_client" / "v1"


def generate(out: Path) -> list[Path]:
    """Run protoc on every proto/rnnserve/v1/*.proto into ``out``; returns written files."""
    staging = out / "_staging"
    staging.mkdir(parents=True, exist_ok=True)
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "rnnserve" / "v1").glob("*.proto"))
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={staging}",
            f"--pyi_out={staging}", f"--grpc_python_out={staging}", *protos]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = []
    for src in sorted((staging / "rnnserve" / "v1").iterdir()):
        text = re.sub(r"^from rnnserve\.v1 import", "from rnnserve_client.v1 import", src.read_text(), flags=re.M)
        dst = out / src.name
        dst.write_text(text)
        written.append(dst)
        src.unlink()
    for d in sorted(staging.rglob("*"), reverse=True):
        d.rmdir()
    staging.rmdir()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
