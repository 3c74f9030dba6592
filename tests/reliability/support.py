"""Helpers for the reliability tests: raw calls by method path, health, certificates."""

from __future__ import annotations

import datetime
import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

#: method path -> (request streaming, response streaming)
METHODS = {
    "/rnnserve.v1.Generation/Generate": (False, False),
    "/rnnserve.v1.Generation/GenerateStream": (False, True),
    "/rnnserve.v1.Generation/Score": (False, False),
    "/rnnserve.v1.Translation/Translate": (False, False),
    "/rnnserve.v1.Assistant/Suggest": (False, False),
    "/rnnserve.v1.Assistant/Session": (True, True),
    "/rnnserve.v1.Models/ListModels": (False, False),
    "/rnnserve.v1.Models/GetModel": (False, False),
}


@dataclass
class Outcome:
    code: grpc.StatusCode
    details: str
    trailing: dict[str, str]
    responses: int


def raw_call(channel: grpc.Channel, method: str, payload: bytes | list[bytes], *, timeout: float = 15,
             metadata: Iterable[tuple[str, str]] = ()) -> Outcome:
    """Call ``method`` with already-serialized request bytes (a list for a client stream)."""
    request_streaming, response_streaming = METHODS[method]
    metadata = tuple(metadata) or None
    if request_streaming:
        messages = payload if isinstance(payload, list) else [payload]
        call = channel.stream_stream(method)(iter(messages), timeout=timeout, metadata=metadata)
    elif response_streaming:
        assert isinstance(payload, bytes)
        call = channel.unary_stream(method)(payload, timeout=timeout, metadata=metadata)
    else:
        assert isinstance(payload, bytes)
        try:
            _, call = channel.unary_unary(method).with_call(payload, timeout=timeout, metadata=metadata)
        except grpc.RpcError as exc:
            call = exc
        return Outcome(call.code(), call.details() or "", dict(call.trailing_metadata() or ()), 0)
    responses = 0
    try:
        for _ in call:
            responses += 1
    except grpc.RpcError:
        pass
    return Outcome(call.code(), call.details() or "", dict(call.trailing_metadata() or ()), responses)


def health(target: str, service: str = "", credentials: grpc.ChannelCredentials | None = None) -> int:
    channel = grpc.secure_channel(target, credentials) if credentials else grpc.insecure_channel(target)
    with channel:
        return health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5).status


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@dataclass
class Certificates:
    """PEM files of a throwaway CA, a server certificate (localhost, 127.0.0.1) and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


def make_certificates(directory: Path) -> Certificates:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    def ca(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(name(common))
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                             content_commitment=False, key_encipherment=False,
                                             data_encipherment=False, key_agreement=False,
                                             encipher_only=False, decipher_only=False), critical=True)
                .sign(key, hashes.SHA256()))
        return cert, key

    def leaf(common: str, issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], server: bool
             ) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(name(common)).issuer_name(issuer[0].subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.ExtendedKeyUsage(
                       [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                       critical=False))
        if server:
            builder = builder.add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        cert = builder.sign(issuer[1], hashes.SHA256())
        return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)

    root = ca("rnnserve test CA")
    other = ca("some other CA")
    server_cert, server_key = leaf("localhost", root, server=True)
    client_cert, client_key = leaf("test client", root, server=False)
    files = {
        "ca": root[0].public_bytes(serialization.Encoding.PEM),
        "server_cert": server_cert, "server_key": server_key,
        "client_cert": client_cert, "client_key": client_key,
        "other_ca": other[0].public_bytes(serialization.Encoding.PEM),
    }
    paths = {}
    for label, data in files.items():
        path = directory / f"{label}.pem"
        path.write_bytes(data)
        paths[label] = path
    return Certificates(**paths)
