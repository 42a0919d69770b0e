"""`utils validate` agrees with OpenAI's published API specification.

The oracle is the spec's request schemas (vendored in tests/data/openai-openapi-requests.json
from openai/openai-openapi, MIT, LICENSE-openai-openapi beside it; commit in its "source"),
checked by `jsonschema`, a JSON Schema implementation independent of the one `utils validate`
compiles. Bodies: every bundled template's output, the spec's own request examples (those
without `stream`), and bodies generated from the schemas. Where the API is known to be stricter
than its schema, `API_STRICTER` says why `utils validate` may refuse a body the schema allows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import ROOT, read_jsonl, run_cli
from openai_batch.validate import api_schema, api_schema_build
from openai_batch.validate import check as validate

DATA = Path(__file__).parent / "data" / "openai-openapi-requests.json"
VENDORED = json.loads(DATA.read_text(encoding="utf-8"))
ORACLE = api_schema_build.runtime_form(VENDORED["source"], VENDORED["schemas"])


def schema_errors(body: dict[str, Any], url: str) -> list[str]:
    name = ORACLE["endpoints"][url]
    schema = {"$defs": ORACLE["$defs"], "$ref": f"#/$defs/{name}"}
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(body)]


def validate_errors(body: dict[str, Any], url: str) -> list[str]:
    line = {"custom_id": "x", "method": "POST", "url": url, "body": body}
    return [
        f"{p.path}: {p.message}"
        for p in validate.check_line(line, 1)
        if p.severity == validate.ERROR
    ]


# The API refuses these though the schema allows them; `utils validate` follows the API.
def api_stricter(body: dict[str, Any], url: str) -> str | None:
    """Why the API refuses a body its schema allows, or None."""
    if body.get("stream"):
        return "the Batch API runs no streaming requests"
    if body.get("model") == "":
        return "the API needs a model name (make-batch-file refuses an empty one too)"
    if url == "/v1/chat/completions" and any(
        isinstance(body.get(k), int) and body[k] < 1
        for k in ("max_tokens", "max_completion_tokens")
    ):
        return "chat: 'integer below minimum value. Expected a value >= 1'"
    if url == "/v1/embeddings" and (body.get("input") == "" or "" in (body.get("input") or [])):
        return "embeddings: the API refuses an empty input ('$.input' is invalid)"
    return None


# The spec contradicts itself here; `utils validate` follows the endpoint's own declaration.
def spec_contradicts_itself(body: dict[str, Any], url: str) -> str | None:
    if url == "/v1/chat/completions" and "top_logprobs" in body and body["top_logprobs"] is None:
        return (
            "top_logprobs: the shared CreateModelResponseProperties says integer, the chat "
            "request's own schema and the SDK say integer or null (allOf makes null invalid)"
        )
    return None


def agree(body: dict[str, Any], url: str) -> None:
    by_schema, by_validate = schema_errors(body, url), validate_errors(body, url)
    if by_schema and not spec_contradicts_itself(body, url):
        assert by_validate, f"validate accepts what the spec refuses: {by_schema}\n{body}"
    elif by_validate:
        assert api_stricter(body, url), f"validate refuses what the spec allows: {by_validate}"


# -- the snapshot the tool ships is the vendored spec's ---------------------------------------


def test_the_shipped_rules_are_the_vendored_spec_converted():
    assert api_schema.snapshot() == json.loads(json.dumps(ORACLE))
    assert api_schema.source()["commit"] == VENDORED["source"]["commit"]
    licence = (DATA.parent / "LICENSE-openai-openapi").read_text(encoding="utf-8")
    assert "MIT" in licence and "OpenAI" in licence
    shipped = Path(api_schema.__file__).with_name("LICENSE-openai-openapi")
    assert shipped.read_text(encoding="utf-8") == licence


def test_the_spec_regenerates_to_the_same_snapshot_when_present():
    spec_dir = ROOT.parent / "shared" / "fixtures" / "openai-openapi"
    if not (spec_dir / "openapi.yaml").is_file():
        pytest.skip("../shared/fixtures/openai-openapi is not present")
    pytest.importorskip("yaml")
    spec = api_schema_build.load_spec(spec_dir)
    assert api_schema_build.snapshot(spec_dir, spec) == api_schema.snapshot()


# -- the spec's own request examples ------------------------------------------------------------

EXAMPLES = [e for e in VENDORED["examples"] if not e["body"].get("stream")]


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"{e['url']} {e['title']}" for e in EXAMPLES])
def test_the_specs_own_examples_pass(example):
    assert schema_errors(example["body"], example["url"]) == []
    assert validate_errors(example["body"], example["url"]) == []


def test_there_are_examples_for_every_endpoint():
    assert {e["url"] for e in EXAMPLES} == set(api_schema.endpoints())


# -- every bundled template's output ------------------------------------------------------------

TEMPLATES = {
    "persona_survey.json": "personas.csv",
    "spam_classifier.json": "emails.csv",
    "synthetic_qa.json": "passages.csv",
}


def test_every_bundled_template_is_covered():
    assert sorted(p.name for p in (ROOT / "templates").glob("*.json")) == sorted(TEMPLATES)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_bundled_templates_render_bodies_both_accept(capsys, tmp_path, template):
    out = tmp_path / "requests.jsonl"
    code, _, err = run_cli(
        capsys,
        "make-batch-file",
        ROOT / "templates" / template,
        ROOT / "sample_data" / TEMPLATES[template],
        "-o",
        out,
    )
    assert code == 0, err
    for line in read_jsonl(out):
        assert schema_errors(line["body"], line["url"]) == []
        assert validate_errors(line["body"], line["url"]) == []


# -- bodies generated from the schemas ----------------------------------------------------------

# A valid body per endpoint; the generator replaces one field with a value drawn from its schema.
# The model is one the capability table does not know (a warning only): what a model can do is
# beyond the schema and tested in test_capabilities.py.
UNKNOWN = "model-from-the-future"
BASES = {
    "/v1/chat/completions": {"model": UNKNOWN, "messages": [{"role": "user", "content": "hi"}]},
    "/v1/responses": {"model": UNKNOWN, "input": "hi"},
    "/v1/embeddings": {"model": UNKNOWN, "input": "hi"},
    "/v1/completions": {"model": UNKNOWN, "prompt": "hi"},
    "/v1/moderations": {"model": UNKNOWN, "input": "hi"},
}
# Fields left out of generation, and why.
NOT_GENERATED = {
    "stream": "the Batch API runs no streaming requests (API_STRICTER)",
    "stream_options": "only meaningful with stream",
    "model": "capabilities: which model may do what is the capability table's, tested apart",
}


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        node = ORACLE["$defs"][node["$ref"].removeprefix("#/$defs/")]
    return node


def _properties(url: str) -> dict[str, Any]:
    props = _all_properties({"$ref": "#/$defs/" + ORACLE["endpoints"][url]})
    return {k: v for k, v in props.items() if k not in NOT_GENERATED}


def _all_properties(node: Any) -> dict[str, Any]:
    node = _resolve(node)
    props: dict[str, Any] = {}
    for part in node.get("allOf", []):
        props.update(_all_properties(part))
    props.update(node.get("properties", {}))
    return props


def values(node: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values near and inside what `node` allows: bounds, their neighbours, wrong types."""
    node = _resolve(node)
    wrong = st.sampled_from([None, True, -1, 2.5, "x", [], {}])
    if not isinstance(node, dict) or depth > 3:
        return wrong
    if "allOf" in node:
        return values(node["allOf"][-1], depth + 1)
    if "anyOf" in node:
        return st.one_of([values(m, depth + 1) for m in node["anyOf"]])
    if "enum" in node:
        return st.one_of(st.sampled_from(node["enum"]), st.just("not-a-value"))
    kind = node.get("type")
    if isinstance(kind, list):
        return st.one_of([values({**node, "type": k}, depth + 1) for k in kind])
    return st.one_of(_typed(kind, node, depth), wrong) if depth else _typed(kind, node, depth)


def _typed(kind: Any, node: dict[str, Any], depth: int) -> st.SearchStrategy[Any]:
    if kind in ("integer", "number"):
        edges = [node.get(k) for k in ("minimum", "maximum") if node.get(k) is not None]
        near = [int(e) + d for e in edges for d in (-1, 0, 1) if abs(e) < 1e12]
        drawn = st.integers(-3, 300) if kind == "integer" else st.floats(-3, 3, allow_nan=False)
        return st.one_of(st.sampled_from(near), drawn) if near else drawn
    if kind == "string":
        sizes = [node.get(k) for k in ("minLength", "maxLength") if node.get(k) is not None]
        near = [max(0, n + d) for n in sizes for d in (-1, 0, 1) if n < 1000]
        text = st.text(alphabet="abc", max_size=8)
        if "pattern" in node:
            text = st.sampled_from(["abc", "a b", ""])
        return st.one_of(st.sampled_from(["a" * n for n in near]), text) if near else text
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "array":
        low, high = node.get("minItems", 0), node.get("maxItems")
        size = st.sampled_from(sorted({max(0, low - 1), low, low + 1} | _near(high)))
        return size.flatmap(
            lambda n: st.lists(values(node.get("items"), depth + 1), min_size=n, max_size=n)
        )
    if kind == "object" or "properties" in node:
        props = node.get("properties", {})
        required = [k for k in node.get("required", []) if k in props]
        optional = {k: v for k, v in props.items() if k not in required}
        return st.fixed_dictionaries(
            {k: values(props[k], depth + 1) for k in required},
            optional={k: values(v, depth + 1) for k, v in list(optional.items())[:4]},
        )
    return st.sampled_from(["x", 1, None])


def _near(n: int | None) -> set[int]:
    return {n - 1, n, n + 1} if n is not None and n <= 40 else set()


def bodies() -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    def one(url: str) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
        props = _properties(url)
        return st.sampled_from(sorted(props)).flatmap(
            lambda key: values(props[key]).map(lambda v: (url, {**BASES[url], key: v}))
        )

    return st.one_of([one(url) for url in BASES])


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(bodies())
def test_generated_bodies_validate_and_the_schema_agree(case):
    url, body = case
    agree(body, url)


def test_the_generator_reaches_the_fields_of_every_endpoint():
    fields = {url: _properties(url) for url in BASES}
    assert all(fields.values())
    assert len(fields["/v1/chat/completions"]) > 20 and len(fields["/v1/responses"]) > 20
