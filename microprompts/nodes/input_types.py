"""Typed inputs of a micro-prompt: the forms `inputs=` takes, each type's JSON Schema (what artifacts carry), and
the Python type rebuilt from that schema, for plain JSON types only, so a schema from an artifact never runs code.

Per input, `inputs=` takes a description (`"..."`, an untyped input: a string unless the flow's state says
otherwise), a type with a description (`(list[str], "...")`, `(list[str], Field(description="..."))` or
`Annotated[list[str], "..."]`), or a bare type; or the whole `inputs=` is a pydantic model class whose fields (with
their descriptions) are the inputs.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from typing_extensions import NotRequired, Required, TypedDict

__all__ = ["InputTypeError", "input_schema", "python_type", "split_inputs", "type_problems"]

InputSpec = Any  # a description, a (type, description) pair, Annotated[type, description], or a type
_MAX_DEPTH = 8  # nesting a schema may have: deeper (or recursive) types are refused
_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
_LIMITS = {
    "pattern": "pattern",
    "minLength": "min_length",
    "maxLength": "max_length",
    "minItems": "min_length",
    "maxItems": "max_length",
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
}
# Keywords read (type, items, ...) or harmless to keep as text (title, description, default, format); any other is
# refused, so a schema means exactly the Python type rebuilt from it.
_KEYWORDS = {"type", "items", "properties", "required", "additionalProperties", "anyOf", "enum", "const"}
_KEYWORDS |= {"title", "description", "default", "format", *_LIMITS}
_DROPPED = ("title", "description", "default")  # per-input text lives in the description, not in the schema


class InputTypeError(ValueError):
    """An input type that cannot be carried as plain JSON Schema, or a schema that is not a plain JSON type."""


def split_inputs(
    inputs: dict[str, InputSpec] | list[str] | type[BaseModel] | None,
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(descriptions, JSON Schemas of the typed inputs) from any form `MicroPrompt(inputs=...)` takes."""
    if inputs is None:
        return {}, {}
    if isinstance(inputs, type) and issubclass(inputs, BaseModel):
        properties = _inline(inputs.model_json_schema()).get("properties", {})
        described = {k: str(f.description or "") for k, f in inputs.model_fields.items()}
        return described, {k: _checked(k, _trimmed(properties.get(k, {}))) for k in inputs.model_fields}
    if isinstance(inputs, (list, tuple)):
        return {str(k): "" for k in inputs}, {}
    if not isinstance(inputs, dict):
        raise InputTypeError(f"inputs must be a dict, a list of names or a pydantic model class, not {inputs!r}")
    descriptions: dict[str, str] = {}
    schemas: dict[str, dict[str, Any]] = {}
    for key, spec in inputs.items():
        description, schema = _split_spec(str(key), spec)
        descriptions[str(key)] = description
        if schema is not None:
            schemas[str(key)] = schema
    return descriptions, schemas


def _split_spec(key: str, spec: InputSpec) -> tuple[str, dict[str, Any] | None]:
    if isinstance(spec, str):
        return spec, None
    if isinstance(spec, tuple) and len(spec) == 2:
        kind, about = spec
        if isinstance(about, str):
            return about, input_schema(kind, key)
        if isinstance(about, FieldInfo):
            return str(about.description or ""), input_schema(Annotated[kind, about], key)
        raise InputTypeError(f"input {key!r}: a (type, description) pair needs a str or Field, not {about!r}")
    if get_origin(spec) is Annotated:
        kind, *metadata = get_args(spec)
        texts = [m for m in metadata if isinstance(m, str)]
        rest = [m for m in metadata if not isinstance(m, str)]
        typed = Annotated[tuple([kind, *rest])] if rest else kind  # type: ignore[valid-type]
        schema = input_schema(typed, key)
        return " ".join(texts) or str(_schema_description(typed)), schema
    return str(_schema_description(spec)), input_schema(spec, key)


def _schema_description(kind: Any) -> str:
    try:
        return str(TypeAdapter(kind).json_schema().get("description") or "")
    except Exception:  # noqa: BLE001 - input_schema reports the type itself
        return ""


def input_schema(kind: Any, key: str = "input") -> dict[str, Any]:
    """The JSON Schema of one input's type (no `$ref`s, no title or description); InputTypeError when the type is
    not a plain JSON type (string, number, integer, boolean, null, enums, arrays and objects of these)."""
    try:
        schema = TypeAdapter(kind).json_schema()
    except Exception as exc:
        raise InputTypeError(f"input {key!r}: {kind!r} has no JSON Schema ({type(exc).__name__}: {exc})") from exc
    return _checked(key, _trimmed(_inline(schema)))


def _checked(key: str, schema: dict[str, Any]) -> dict[str, Any]:
    python_type(schema, key)
    return schema


def _trimmed(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in _DROPPED}


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """`$ref`s replaced by their definitions (recursive types are cut at a depth `python_type` refuses)."""
    defs = schema.get("$defs", {})

    def inline(node: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH + 2:
            return {"$ref": "recursive"}
        if isinstance(node, dict):
            if "$ref" in node and isinstance(node["$ref"], str):
                target = defs.get(node["$ref"].split("/")[-1], {"$ref": node["$ref"]})
                return inline({**target, **{k: v for k, v in node.items() if k != "$ref"}}, depth + 1)
            return {k: inline(v, depth + 1) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [inline(v, depth + 1) for v in node]
        return node

    return inline(schema, 0)


def python_type(schema: Any, key: str = "input") -> Any:
    """The Python type a JSON Schema stands for: str, int, float, bool, None, Literal, unions, lists, dicts and
    TypedDicts of these, with their bounds; InputTypeError for anything else (no `$ref`, no import, no code)."""
    try:
        text = json.dumps(schema, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputTypeError(f"input {key!r}: its type is not a JSON Schema object ({exc})") from exc
    try:
        return _python_type(text)
    except InputTypeError as exc:
        raise InputTypeError(f"input {key!r}: {exc}") from None


@lru_cache(maxsize=512)
def _python_type(text: str) -> Any:
    """Memoized per schema text, so the same schema is always the same type (and its validator is built once)."""
    return _build(json.loads(text), 0)


def _build(schema: Any, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise InputTypeError(f"its type nests deeper than {_MAX_DEPTH} levels")
    if not isinstance(schema, dict):
        raise InputTypeError(f"a type must be a JSON Schema object, not {schema!r}")
    unknown = sorted(set(schema) - _KEYWORDS)
    if unknown:
        raise InputTypeError(f"JSON Schema keyword(s) {unknown} are not supported in an input type")
    if "enum" in schema or "const" in schema:
        values = schema["enum"] if "enum" in schema else [schema["const"]]
        if not isinstance(values, list) or not values or not all(_is_scalar(v) for v in values):
            raise InputTypeError("an enum must list JSON scalars (strings, numbers, booleans, null)")
        return Literal[tuple(values)]  # type: ignore[valid-type]
    if "anyOf" in schema:
        options = schema["anyOf"]
        if not isinstance(options, list) or not options:
            raise InputTypeError("anyOf must be a non-empty list of types")
        result = _build(options[0], depth + 1)
        for option in options[1:]:
            result = result | _build(option, depth + 1)
        return result
    plain = _plain(schema, depth)
    limits = {field: schema[k] for k, field in _LIMITS.items() if k in schema}
    if not limits:
        return plain
    if any(
        not isinstance(v, str) if f == "pattern" else isinstance(v, bool) or not isinstance(v, (int, float))
        for f, v in limits.items()
    ):
        raise InputTypeError(f"bounds must be numbers (a pattern a string), not {limits}")
    return Annotated[plain, Field(**limits)]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _plain(schema: dict[str, Any], depth: int) -> Any:
    kind = schema.get("type")
    if kind is None:
        return Any
    if not isinstance(kind, str):
        raise InputTypeError(f"'type' must be one type name, not {kind!r}")
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        items = schema.get("items")
        return list[_build(items, depth + 1) if items is not None else Any]  # type: ignore[misc]
    if kind == "object":
        return _object(schema, depth)
    raise InputTypeError(f"JSON Schema type {kind!r} is not supported")


def _object(schema: dict[str, Any], depth: int) -> Any:
    properties = schema.get("properties")
    if properties is None:
        values = schema.get("additionalProperties")
        return dict[str, _build(values, depth + 1) if isinstance(values, dict) else Any]  # type: ignore[misc]
    if not isinstance(properties, dict) or not all(isinstance(k, str) for k in properties):
        raise InputTypeError("'properties' must map names to types")
    required = schema.get("required", [])
    if not isinstance(required, list):
        raise InputTypeError("'required' must be a list of names")
    fields = {
        k: (Required if k in required else NotRequired)[_build(v, depth + 1)]  # type: ignore[misc]
        for k, v in properties.items()
    }
    name = re.sub(r"\W", "_", str(schema.get("title") or "Object")) or "Object"
    make: Any = TypedDict  # built from names known only at run time
    typed = make(name, fields)
    typed.__pydantic_config__ = ConfigDict(extra="forbid" if schema.get("additionalProperties") is False else "ignore")
    return typed


@lru_cache(maxsize=1024)
def _adapter(kind: Any) -> TypeAdapter[Any]:
    return TypeAdapter(kind)


def type_problems(types: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """One line per value (of those present) that does not match its type, strictly (no "5" for 5), naming the
    input and where inside it; types pydantic cannot check are skipped."""
    problems = []
    for key, kind in types.items():
        if key not in values:
            continue
        try:
            adapter = _adapter(kind)
        except Exception:  # noqa: BLE001 - unhashable or arbitrary user types: not checked here
            continue
        try:
            adapter.validate_python(values[key], strict=True)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = "".join(f"[{p!r}]" for p in error["loc"])
            got = type(values[key]).__name__
            problems.append(f"input {key!r}{where}: {error['msg']} (got {got} {_short(values[key])})")
        except Exception:  # noqa: BLE001 - a type pydantic cannot check: not checked here
            continue
    return problems


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
