"""Server reflection, ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``, with the API's comments.

grpcio-reflection serves only ``v1alpha`` (newer tools ask ``v1`` first), and from the
descriptors compiled into the generated modules, which carry no source info, so
``grpcurl describe`` showed none of the proto's documentation. This servicer answers both
versions (their messages are the same on the wire) and serves the ``rnnserve.v1`` files
from the protoset ``scripts/gen_proto.py`` writes with ``--include_source_info``
(``rnnserve_client/rnnserve_v1.protoset``): every comment of ``proto/`` reaches the
tools. Other files (``grpc.health.v1``, reflection itself) come from the default
descriptor pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from importlib import resources

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc import aio
from grpc_reflection.v1alpha import reflection_pb2

V1ALPHA = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"].full_name
V1 = "grpc.reflection.v1.ServerReflection"
SERVICE_NAMES = (V1, V1ALPHA)
PROTOSET = "rnnserve_v1.protoset"
_V1_FILE = "grpc/reflection/v1/reflection.proto"


def load_protoset(package: str = "rnnserve_client", name: str = PROTOSET) -> dict[str, bytes]:
    """File name -> serialized ``FileDescriptorProto`` (source info included) of a shipped protoset."""
    data = resources.files(package).joinpath(name).read_bytes()
    files = descriptor_pb2.FileDescriptorSet.FromString(data).file
    return {f.name: f.SerializeToString() for f in files}


def _register_v1(pool: descriptor_pool.DescriptorPool) -> None:
    """Add ``grpc/reflection/v1/reflection.proto`` to ``pool`` (v1alpha's messages under v1's package),
    so tools can describe the v1 service too."""
    try:
        pool.FindFileByName(_V1_FILE)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    old, new = f".{proto.package}.", ".grpc.reflection.v1."
    proto.name, proto.package = _V1_FILE, "grpc.reflection.v1"
    proto.options.Clear()
    proto.options.java_package = "io.grpc.reflection.v1"
    proto.options.java_outer_classname = "ServerReflectionProto"
    proto.options.java_multiple_files = True
    proto.options.go_package = "google.golang.org/grpc/reflection/grpc_reflection_v1"
    for message in proto.message_type:
        for field in message.field:
            if field.type_name:
                field.type_name = field.type_name.replace(old, new)
    for service in proto.service:
        for method in service.method:
            method.input_type = method.input_type.replace(old, new)
            method.output_type = method.output_type.replace(old, new)
    pool.AddSerializedFile(proto.SerializeToString())


class ReflectionService:
    """Answers ``ServerReflectionInfo`` for both reflection versions."""

    def __init__(self, service_names: Iterable[str], protoset: dict[str, bytes] | None = None,
                 pool: descriptor_pool.DescriptorPool | None = None) -> None:
        self._pool = pool if pool is not None else descriptor_pool.Default()
        _register_v1(self._pool)
        self._service_names = tuple(sorted({*service_names, *SERVICE_NAMES}))
        self._protoset = load_protoset() if protoset is None else protoset

    def add_to_server(self, server: aio.Server) -> None:
        handler = grpc.stream_stream_rpc_method_handler(
            self.ServerReflectionInfo,
            request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
            response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString)
        server.add_generic_rpc_handlers(tuple(
            grpc.method_handlers_generic_handler(name, {"ServerReflectionInfo": handler}) for name in SERVICE_NAMES))

    async def ServerReflectionInfo(self, requests: AsyncIterator[reflection_pb2.ServerReflectionRequest],
                                   context: aio.ServicerContext
                                   ) -> AsyncIterator[reflection_pb2.ServerReflectionResponse]:
        async for request in requests:
            yield self.answer(request)

    def answer(self, request: reflection_pb2.ServerReflectionRequest) -> reflection_pb2.ServerReflectionResponse:
        """The response to one reflection request."""
        kind = request.WhichOneof("message_request")
        try:
            if kind == "file_by_filename":
                response = self._files(request.file_by_filename)
            elif kind == "file_containing_symbol":
                response = self._files(self._pool.FindFileContainingSymbol(request.file_containing_symbol).name)
            elif kind == "file_containing_extension":
                ext = request.file_containing_extension
                message = self._pool.FindMessageTypeByName(ext.containing_type)
                extension = self._pool.FindExtensionByNumber(message, ext.extension_number)
                response = self._files(extension.file.name)
            elif kind == "all_extension_numbers_of_type":
                message = self._pool.FindMessageTypeByName(request.all_extension_numbers_of_type)
                response = reflection_pb2.ServerReflectionResponse(
                    all_extension_numbers_response=reflection_pb2.ExtensionNumberResponse(
                        base_type_name=message.full_name,
                        extension_number=sorted(e.number for e in self._pool.FindAllExtensions(message))))
            elif kind == "list_services":
                response = reflection_pb2.ServerReflectionResponse(
                    list_services_response=reflection_pb2.ListServiceResponse(
                        service=[reflection_pb2.ServiceResponse(name=name) for name in self._service_names]))
            else:
                response = _error(grpc.StatusCode.INVALID_ARGUMENT, "no request set (one of file_by_filename, "
                                  "file_containing_symbol, file_containing_extension, all_extension_numbers_of_type, "
                                  "list_services)")
        except KeyError:
            response = _error(grpc.StatusCode.NOT_FOUND, f"{kind} {getattr(request, kind)!s} not found".strip())
        response.valid_host = request.host
        response.original_request.CopyFrom(request)
        return response

    def _files(self, name: str) -> reflection_pb2.ServerReflectionResponse:
        """The file ``name`` and every file it imports, transitively (the protoset's copy where it has one)."""
        serialized: dict[str, bytes] = {}
        pending = [name]
        while pending:
            current = pending.pop()
            if current in serialized:
                continue
            if current in self._protoset:
                data = self._protoset[current]
                dependencies = list(descriptor_pb2.FileDescriptorProto.FromString(data).dependency)
            else:
                proto = descriptor_pb2.FileDescriptorProto()
                self._pool.FindFileByName(current).CopyToProto(proto)
                data, dependencies = proto.SerializeToString(), list(proto.dependency)
            serialized[current] = data
            pending.extend(dependencies)
        return reflection_pb2.ServerReflectionResponse(
            file_descriptor_response=reflection_pb2.FileDescriptorResponse(file_descriptor_proto=list(
                serialized.values())))


def _error(code: grpc.StatusCode, message: str) -> reflection_pb2.ServerReflectionResponse:
    return reflection_pb2.ServerReflectionResponse(
        error_response=reflection_pb2.ErrorResponse(error_code=code.value[0], error_message=message))
