"""JSON Schemas of the ``rnnserve.v1`` messages, as protobuf's JSON mapping writes them, with the proto's comments.

The descriptors come from the protoset the client ships (``rnnserve_v1.protoset``, written
with source info by ``scripts/gen_proto.py``), so every schema, property and enum carries
the documentation of ``proto/rnnserve/v1/*.proto``: the API document cannot drift from
the API.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2

from rnnserve.edge.services.reflection import load_protoset

F = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[int, dict[str, Any]] = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    # 64-bit integers: a number where a double holds it exactly, else a decimal string (protobuf's
    # JSON mapping; both are accepted in requests)
    F.TYPE_INT64: {"type": ["integer", "string"], "format": "int64"},
    F.TYPE_SINT64: {"type": ["integer", "string"], "format": "int64"},
    F.TYPE_SFIXED64: {"type": ["integer", "string"], "format": "int64"},
    F.TYPE_UINT64: {"type": ["integer", "string"], "format": "uint64"},
    F.TYPE_FIXED64: {"type": ["integer", "string"], "format": "uint64"},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}


def _comment(location: descriptor_pb2.SourceCodeInfo.Location | None) -> str:
    if location is None:
        return ""
    return " ".join(line.strip() for line in location.leading_comments.strip().splitlines()).strip()


def schema_name(full_name: str) -> str:
    """The component name of a message or enum: its full proto name without the leading dot."""
    return full_name.lstrip(".")


def proto_schemas() -> dict[str, dict[str, Any]]:
    """Component schemas for every message and enum of ``rnnserve.v1``, keyed by full proto name."""
    schemas: dict[str, dict[str, Any]] = {}
    for data in load_protoset().values():
        file = descriptor_pb2.FileDescriptorProto.FromString(data)
        where = {tuple(loc.path): loc for loc in file.source_code_info.location}
        for i, enum in enumerate(file.enum_type):
            schemas[f"{file.package}.{enum.name}"] = _enum(enum, where, (5, i))
        for i, message in enumerate(file.message_type):
            _message(file.package, message, where, (4, i), schemas)
    return schemas


def _enum(enum: descriptor_pb2.EnumDescriptorProto, where: dict[tuple[int, ...], Any],
          path: tuple[int, ...]) -> dict[str, Any]:
    values = [v.name for v in enum.value]
    documented = [f"{v.name}: {text}" for j, v in enumerate(enum.value) if (text := _comment(where.get((*path, 2, j))))]
    description = " ".join([_comment(where.get(path)), *documented]).strip()
    return {"type": "string", "enum": values, **({"description": description} if description else {})}


def _message(scope: str, message: descriptor_pb2.DescriptorProto, where: dict[tuple[int, ...], Any],
             path: tuple[int, ...], schemas: dict[str, dict[str, Any]]) -> None:
    full_name = f"{scope}.{message.name}"
    maps = {f"{full_name}.{m.name}": m for m in message.nested_type if m.options.map_entry}
    for j, nested in enumerate(message.nested_type):
        if not nested.options.map_entry:
            _message(full_name, nested, where, (*path, 3, j), schemas)
    properties = {}
    for j, field in enumerate(message.field):
        entry = maps.get(schema_name(field.type_name))
        if entry is not None:
            value = _field_type(entry.field[1])
            schema: dict[str, Any] = {"type": "object", "additionalProperties": value}
        else:
            schema = _field_type(field)
            if field.label == F.LABEL_REPEATED:
                schema = {"type": "array", "items": schema}
        text = _comment(where.get((*path, 2, j)))
        if field.HasField("oneof_index") and not field.proto3_optional:
            oneof = message.oneof_decl[field.oneof_index].name
            text = f"{text} (one of '{oneof}': set exactly one)".strip()
        if text:
            schema = {**schema, "description": text} if "$ref" not in schema else {"allOf": [schema],
                                                                                   "description": text}
        properties[field.name] = schema
    result: dict[str, Any] = {"type": "object", "properties": properties}
    description = _comment(where.get(path))
    if description:
        result["description"] = description
    schemas[full_name] = result


def _field_type(field: descriptor_pb2.FieldDescriptorProto) -> dict[str, Any]:
    if field.type in (F.TYPE_MESSAGE, F.TYPE_ENUM):
        return {"$ref": f"#/components/schemas/{schema_name(field.type_name)}"}
    return dict(_SCALARS[field.type])
