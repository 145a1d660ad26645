"""The service's OpenAPI description, complete: every schema it refers to, and its API key.

FastAPI describes what it validates itself; a body a handler reads on its own (`POST /events`)
is described by hand, so the models it refers to are added here, and so is the `X-API-Key`
scheme when the service requires one. The description is the contract the service is tested
against (tests/faults/test_api_contract.py).
"""

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

REF_TEMPLATE = "#/components/schemas/{model}"
API_KEY_SCHEME = "ApiKey"


def describe(
    app: FastAPI,
    models: Sequence[type[BaseModel]] = (),
    api_key: tuple[str, Sequence[tuple[str, str]]] | None = None,
) -> dict[str, Any]:
    """`app`'s OpenAPI description with `models` among its schemas and, given `api_key` (the
    header and the (path, method) operations that require it), its security scheme."""
    if app.openapi_schema is None:
        schema = FastAPI.openapi(app)  # builds and keeps app.openapi_schema
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in models:
            definition = model.model_json_schema(ref_template=REF_TEMPLATE)
            schemas.update(definition.pop("$defs", {}))
            schemas[model.__name__] = definition
        if api_key is not None:
            header, operations = api_key
            components["securitySchemes"] = {
                API_KEY_SCHEME: {"type": "apiKey", "in": "header", "name": header}
            }
            for path, method in operations:
                schema["paths"][path][method]["security"] = [{API_KEY_SCHEME: []}]
    return app.openapi_schema


def dangling_refs(schema: dict[str, Any]) -> list[str]:
    """The `$ref`s of `schema` that name nothing in it."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and not _resolves(schema, ref):
                found.append(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return sorted(set(found))


def _resolves(schema: dict[str, Any], ref: str) -> bool:
    node: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True
