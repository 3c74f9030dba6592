"""Regenerate the Python wire types in clients/python/rnnserve_client/v1 from proto/.

protoc names generated imports after the proto package path (``rnnserve.v1``); the
stubs live in the client distribution as ``rnnserve_client.v1``, so the imports are
rewritten. Beside them it copies ``proto/rnnserve/v1/service_config.json`` (the channel
settings every client loads: one source of truth, shipped in the client wheel).
``tests/test_proto_codegen.py`` checks the committed files are current.

It also writes the protoset (a ``FileDescriptorSet`` with source info, so comments
included) that server reflection serves and ``grpcurl -protoset`` reads:
``clients/python/rnnserve_client/rnnserve_v1.protoset`` (with the default ``--out``),
checked by ``tests/test_api_contract.py``.

Usage: python scripts/gen_proto.py [--out DIR] [--protoset FILE]
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parents[1]
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUT = ROOT / "clients" / "python" / "rnnserve_client" / "v1"
DEFAULT_PROTOSET = ROOT / "clients" / "python" / "rnnserve_client" / "rnnserve_v1.protoset"
SERVICE_CONFIG = PROTO_ROOT / "rnnserve" / "v1" / "service_config.json"


def _protos() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "rnnserve" / "v1").glob("*.proto"))


def _include() -> str:
    return str(Path(protoc.__file__).parent / "_proto")


def generate_protoset(path: Path) -> Path:
    """Write the FileDescriptorSet of proto/rnnserve/v1 with source info (comments) and imports."""
    path.parent.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{_include()}", "--include_source_info", "--include_imports",
            f"--descriptor_set_out={path}", *_protos()]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    return path


def generate(out: Path) -> list[Path]:
    """Run protoc on every proto/rnnserve/v1/*.proto into ``out``; returns written files."""
    staging = out / "_staging"
    staging.mkdir(parents=True, exist_ok=True)
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{_include()}", f"--python_out={staging}",
            f"--pyi_out={staging}", f"--grpc_python_out={staging}", *_protos()]
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
    written.append(Path(shutil.copyfile(SERVICE_CONFIG, out / SERVICE_CONFIG.name)))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--protoset", type=Path, default=None,
                        help=f"where to write the protoset (default with the default --out: {DEFAULT_PROTOSET.name} "
                             "in the client package; with another --out: none)")
    args = parser.parse_args(argv)
    protoset = args.protoset if args.protoset is not None else DEFAULT_PROTOSET if args.out == DEFAULT_OUT else None
    written = generate(args.out)
    if protoset is not None:
        written.append(generate_protoset(protoset))
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
