"""Developer tool: derive the request rules `utils validate` applies from OpenAI's OpenAPI spec.

    python -m openai_batch.validate.api_schema_build [SPEC_DIR] [--tests-data DIR]

SPEC_DIR holds openapi.yaml, its LICENSE and a README naming its commit (a checkout of the
public openai/openai-openapi repository; default ../shared/fixtures/openai-openapi). It writes

- src/openai_batch/validate/api_schema.json: the request schema of each endpoint the Batch API
  takes, with everything it references, converted from OpenAPI 3.x to JSON Schema (draft
  2020-12) and stripped of prose; `api_schema.py` checks bodies against it at run time;
- with --tests-data: the same schemas in the spec's own form and the spec's request examples,
  which the conformance test (tests/test_validate_conformance.py) checks `utils validate`
  against without needing the spec itself.

Needs PyYAML (a test dependency); nothing at run time reads the spec.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from openai_batch.requestfile.endpoints import CHAT, COMPLETIONS, EMBEDDINGS, MODERATIONS, RESPONSES

# Batch API endpoint -> (spec path, request schema).
ENDPOINTS = {
    CHAT: ("/chat/completions", "CreateChatCompletionRequest"),
    RESPONSES: ("/responses", "CreateResponse"),
    EMBEDDINGS: ("/embeddings", "CreateEmbeddingRequest"),
    COMPLETIONS: ("/completions", "CreateCompletionRequest"),
    MODERATIONS: ("/moderations", "CreateModerationRequest"),
}
_REF = "#/components/schemas/"
# Keywords that only document (or only concern responses): dropped to keep the snapshot small.
_PROSE = {
    "description",
    "title",
    "example",
    "examples",
    "default",
    "deprecated",
    "externalDocs",
    "readOnly",
    "writeOnly",
    "x-oaiMeta",
    "x-oaiTypeLabel",
    "x-oaiExpandable",
    "x-stainless-const",
    "x-stainless-go-variant-constructor",
    "x-stainless-naming",
    "x-stainless-nominal",
}
# Where the API and its documentation (the spec's own request examples) treat a field as optional
# that a schema shared with the response objects calls required: (schema, field, why). The API
# is followed; the snapshot lists each patch.
PATCHES = (
    (
        "InputImageContent",
        "detail",
        "the spec's 'Image input' example for /v1/responses omits it; the API defaults to auto",
    ),
    (
        "FunctionTool",
        "strict",
        "the spec's 'Functions' example for /v1/responses omits it; the API defaults to true",
    ),
    (
        "FunctionTool",
        "parameters",
        "a function without arguments needs none; the API accepts a tool without it",
    ),
)
# Values the official SDK's request types take that an enum of the spec lacks, where the spec
# takes the same value elsewhere (the SDK is generated from a newer spec): (schema, property
# path, value, why).
ENUM_ADDITIONS = (
    (
        "ChatCompletionRequestMessageContentPartImage",
        ("image_url", "detail"),
        "original",
        "the SDK's chat image part takes it, as the spec's own DetailEnum (/v1/responses) does",
    ),
)
_DEFAULT_SPEC = Path(__file__).resolve().parents[3].parent / "shared/fixtures/openai-openapi"


def load_spec(spec_dir: Path) -> dict[str, Any]:
    import yaml

    with open(spec_dir / "openapi.yaml", encoding="utf-8") as fh:
        return dict(yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))


def source_note(spec_dir: Path, spec: dict[str, Any]) -> dict[str, str]:
    """Where the rules come from: the spec's commit (from its README), version and licence."""
    readme = (spec_dir / "README.md").read_text(encoding="utf-8")
    commit = re.search(r"commit\s+([0-9a-f]{7,40})", readme)
    date = re.search(r"\((\d{4}-\d{2}-\d{2})", readme)
    return {
        "repository": "openai/openai-openapi",
        "commit": commit.group(1) if commit else "unknown",
        "date": date.group(1) if date else "unknown",
        "version": str(spec.get("info", {}).get("version", "unknown")),
        "license": "MIT, Copyright (c) OpenAI (https://openai.com); see LICENSE-openai-openapi",
    }


def closure(schemas: dict[str, Any], roots: list[str]) -> dict[str, Any]:
    """The named schemas `roots` reference, directly or not, in the spec's own form."""
    seen: dict[str, Any] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = _strip(schemas[name])
        todo += _refs(seen[name])
    return dict(sorted(seen.items()))


def _strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip(v) for k, v in node.items() if k not in _PROSE and not k.startswith("x-")}
    if isinstance(node, list):
        return [_strip(v) for v in node]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        ref = node.get("$ref")
        found = [ref.removeprefix(_REF)] if isinstance(ref, str) else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0/3.1 schema -> JSON Schema 2020-12 (`nullable`, boolean exclusive bounds,
    component references)."""
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k not in ("nullable", "discriminator")}
    if "oneOf" in out:  # the spec's oneOf members overlap (a string is also a "format: uri"
        out["anyOf"] = out.pop("oneOf")  # string); the API takes the first that fits
    if isinstance(out.get("$ref"), str):
        out["$ref"] = "#/$defs/" + out["$ref"].removeprefix(_REF)
    for bound, exclusive in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        if out.get(exclusive) is True:
            out[exclusive] = out.pop(bound)
        elif out.get(exclusive) is False:
            del out[exclusive]
    if "enum" in out and node.get("nullable") and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    if node.get("nullable"):
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        elif kind is None:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def snapshot(spec_dir: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """The runtime snapshot: source note, endpoint -> schema name, and the converted $defs."""
    raw = closure(spec["components"]["schemas"], [name for _, name in ENDPOINTS.values()])
    return runtime_form(source_note(spec_dir, spec), raw)


def runtime_form(source: dict[str, str], raw: dict[str, Any]) -> dict[str, Any]:
    """The snapshot `api_schema.py` reads: JSON Schema, each definition under `$defs`."""
    defs = {name: _recursive_refs(to_json_schema(schema), name) for name, schema in raw.items()}
    notes = []
    for name, optional, why in PATCHES:
        defs[name]["required"] = [f for f in defs[name].get("required", []) if f != optional]
        notes.append(f"{name}.{optional} is optional: {why}")
    for name, path, value, why in ENUM_ADDITIONS:
        node = defs[name]
        for key in path:
            node = node["properties"][key]
        node["enum"] = [*node["enum"], value]
        notes.append(f"{name}.{'.'.join(path)} also takes {value!r}: {why}")
    return {
        "source": source,
        "endpoints": {url: name for url, (_, name) in ENDPOINTS.items()},
        "patches": notes,
        "$defs": defs,
    }


def _recursive_refs(node: Any, name: str) -> Any:
    """`$recursiveRef: "#"` (draft 2019-09, in CompoundFilter) as a plain reference to `name`."""
    if isinstance(node, list):
        return [_recursive_refs(v, name) for v in node]
    if not isinstance(node, dict):
        return node
    if node.get("$recursiveRef") == "#":
        return {"$ref": f"#/$defs/{name}"}
    return {k: _recursive_refs(v, name) for k, v in node.items() if k != "$recursiveAnchor"}


def request_examples(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The spec's curl request examples for each endpoint: {url, title, body}."""
    out = []
    for url, (path, _) in ENDPOINTS.items():
        meta = spec["paths"][path]["post"].get("x-oaiMeta", {})
        examples = meta.get("examples", [])
        for example in examples if isinstance(examples, list) else [examples]:
            curl = (example.get("request") or {}).get("curl", "")
            match = re.search(r"-d\s+'(.*)'", curl, re.DOTALL)
            if match:
                body = json.loads(match.group(1))
                out.append({"url": url, "title": example.get("title", ""), "body": body})
    return out


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=None, separators=(",", ":"), sort_keys=True) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec_dir", nargs="?", type=Path, default=_DEFAULT_SPEC)
    parser.add_argument("--tests-data", type=Path, help="also write the conformance test's data")
    args = parser.parse_args(argv)
    spec = load_spec(args.spec_dir)
    licence = (args.spec_dir / "LICENSE").read_text(encoding="utf-8")
    here = Path(__file__).resolve().parent
    write_json(here / "api_schema.json", snapshot(args.spec_dir, spec))
    (here / "LICENSE-openai-openapi").write_text(licence, encoding="utf-8")
    if args.tests_data:
        raw = closure(spec["components"]["schemas"], [n for _, n in ENDPOINTS.values()])
        data = {
            "source": source_note(args.spec_dir, spec),
            "endpoints": {url: name for url, (_, name) in ENDPOINTS.items()},
            "schemas": raw,
            "examples": request_examples(spec),
        }
        args.tests_data.mkdir(parents=True, exist_ok=True)
        write_json(args.tests_data / "openai-openapi-requests.json", data)
        (args.tests_data / "LICENSE-openai-openapi").write_text(licence, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
