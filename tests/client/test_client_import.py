"""The client library stays light: importing it never imports torch."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import requires


def test_import_does_not_pull_in_torch() -> None:
    code = (
        "import sys, rnnserve_client, rnnserve_client.aio, rnnserve_client.client, rnnserve_client.results; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_only_grpcio_and_protobuf_are_required() -> None:
    names = {re.match(r"[\w.-]+", spec).group().lower() for spec in requires("rnnserve-client") or []}
    assert names == {"grpcio", "protobuf"}
