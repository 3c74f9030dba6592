"""Python client for rnnserve, a gRPC server for recurrent text models.

``Client`` is the blocking client and ``AsyncClient`` the asyncio one; both return the
frozen dataclasses of :mod:`rnnserve_client.results` and raise the typed exceptions of
:mod:`rnnserve_client.errors`. The generated wire types live in ``rnnserve_client.v1``.
Only grpcio and protobuf are needed.
"""

from rnnserve_client import errors, results
from rnnserve_client.aio import AsyncClient
from rnnserve_client.client import Client
from rnnserve_client.errors import RnnserveError

__all__ = ["AsyncClient", "Client", "RnnserveError", "errors", "results"]
