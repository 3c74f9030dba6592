"""HTTPS (and mutual TLS) from the same certificate settings as gRPC."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import httpx2
import openai
import pytest

from rnnserve.host.plugins import PluginHost
from rnnserve.ops.config import ModelSpec, ServerConfig
from rnnserve.testing.server import running_server
from tests.reliability.support import Certificates, make_certificates

MODELS = (ModelSpec("toy", "toy-lm"),)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


def _context(ca: Path, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert), str(key))
    return context


def test_https_with_the_grpc_certificate(certs: Certificates, toy_host: PluginHost) -> None:
    config = ServerConfig(models=MODELS, default_models=False, tls_cert=str(certs.server_cert),
                          tls_key=str(certs.server_key))
    with running_server(config, toy_host, http=True) as srv:
        assert srv.http_url.startswith("https://")
        with urllib.request.urlopen(srv.http_url + "/health", context=_context(certs.ca), timeout=10) as reply:
            assert reply.status == 200
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # plain HTTP on the TLS port
            urllib.request.urlopen(srv.http_url.replace("https", "http") + "/health", timeout=10)
        with httpx2.Client(verify=_context(certs.ca)) as http_client:
            client = openai.OpenAI(base_url=srv.http_url + "/v1", api_key="x", max_retries=0, http_client=http_client)
            assert client.completions.create(model="toy", prompt="the", max_tokens=3, temperature=0).choices[0].text \
                == " qu"


def test_mutual_tls_requires_a_client_certificate(certs: Certificates, toy_host: PluginHost) -> None:
    config = ServerConfig(models=MODELS, default_models=False, tls_cert=str(certs.server_cert),
                          tls_key=str(certs.server_key), tls_client_ca=str(certs.ca))
    with running_server(config, toy_host, http=True) as srv:
        mutual = _context(certs.ca, certs.client_cert, certs.client_key)
        with urllib.request.urlopen(srv.http_url + "/v1/models", context=mutual, timeout=10) as reply:
            assert reply.status == 200
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            urllib.request.urlopen(srv.http_url + "/v1/models", context=_context(certs.ca), timeout=10).read()
