"""A strict, in-process fake of the OpenAI Files + Batches API (and the sync endpoints), for tests.

The project's code talks to this fake with the real `openai` SDK through `base_url`, so the fake
behaves like the service: same paths, same JSON shapes (checked against the SDK's types with
`_strict_response_validation=True`), same error envelopes, same validation of batch input files,
and status that moves forward over time. Anything that passes here should pass against OpenAI.

Start it (the `fake_api` fixture in conftest.py does this and sets OPENAI_API_KEY/OPENAI_BASE_URL):

    fake = FakeOpenAI().start()          # ThreadingHTTPServer, 127.0.0.1:<free port>, own thread
    fake.base_url                        # "http://127.0.0.1:<port>/v1"  (fake.root_url: no /v1)
    fake.api_key                         # the only key accepted ("Authorization: Bearer <key>")
    client = fake.client(strict=True)    # openai.OpenAI pointed at the fake
    fake.stop()

Endpoints (all under /v1; every error is {"error": {"message", "type", "param", "code"}}):
    POST   /files                 multipart (file, purpose[, expires_after[anchor|seconds]])
    GET    /files                 ?purpose= &limit= (1..10000) &after= &order=asc|desc (desc)
    GET    /files/{id}            DELETE /files/{id}         GET /files/{id}/content (raw bytes)
    POST   /batches               {input_file_id, endpoint, completion_window, metadata?,
                                   output_expires_after?}; unknown parameters are rejected
    GET    /batches               ?limit= (1..100, default 20) &after=   newest first
    GET    /batches/{id}          POST /batches/{id}/cancel
    POST   /chat/completions, /embeddings, /responses, /completions, /moderations  (sync; answered
                                   by the same responder as batch lines; no streaming)
Unknown paths answer 404 "Invalid URL (METHOD /path)"; unknown ids answer 404 with the real
wording ("No such File object: file-xyz", "No batch found with id 'batch_xyz'."). A missing or
wrong key answers 401 `invalid_api_key` (the key is masked in the message, as OpenAI does).
Like OpenAI, the key is also accepted as the password of Basic auth (`http://user:KEY@host/v1`).

Upload rules: purpose in {assistants, batch, fine-tune, vision, user_data, evals}; purpose `batch`
needs a `.jsonl` filename and at most `max_batch_file_bytes` (200 MB; lower it in tests) else 400.
Batch uploads expire 30 days after creation (`expires_at`); others never, unless `expires_after`.

Batch creation (400 unless noted): endpoint one of the Batch API's, completion_window "24h",
metadata <= 16 string pairs (keys <= 64 chars, values <= 512), input file must exist (404
"No such File object" if unknown/deleted/expired) and have purpose `batch` (400).
The input file is validated when the batch leaves `validating`; problems fail the batch with
`errors = {"object": "list", "data": [{"code", "message", "param", "line"}]}`. Codes:
    empty_file, file_too_large, too_many_tasks (> max_batch_requests, 50,000), invalid_json_line,
    missing_required_parameter (custom_id/method/url/body/body.model), invalid_type,
    invalid_method (not POST), url_mismatch (url != batch endpoint), duplicate_custom_id,
    model_mismatch (more than one model), token_limit_exceeded (enqueued_token_limit or plan).
    (invalid_json_line, duplicate_custom_id, url_mismatch, model_mismatch, empty_file and
    too_many_tasks are the codes OpenAI documents; the others' wording is ours.)
`line` is 1-based; at most `max_validation_errors` (100) are reported.

Time and status. The fake has a virtual clock (`fake.now()`, starts at the real time, +1 s per
created object, + `step_seconds` (30) per step). A batch moves one step at a time:
    validating -> in_progress (request_counts.total set, `model` set)
    in_progress -> in_progress ... (each step processes ceil(total / progress_steps) requests;
                   progress_steps = 3, so request_counts.completed/failed grow)
    in_progress -> finalizing (once all requests ran) -> completed (output/error files written)
    cancelling -> cancelled (partial output/error files);  expiry -> expired (see plan/travel)
request_counts.failed counts requests that ran and failed; expired/cancelled requests that never
ran are in neither count (completed + failed < total), and `usage` sums the bodies' usage.
By default EVERY `GET /v1/batches/{id}` first advances that batch one step (`auto_advance=True`),
so a polling client sees it progress: created=validating, 1st GET in_progress 0/N, then N/3,
2N/3, N/N, finalizing, completed (6 GETs with progress_steps=3). Tests can set
`fake.advance_on_list = True` makes a `GET /v1/batches` page advance each unfinished batch on it
the same way (for clients that poll many batches through list pages). Or set
`fake.auto_advance = False` and drive it: `fake.advance(batch_id=None, steps=1)` (None = every
unfinished batch) and `fake.finish(batch_id=None)` (until a final status).
`fake.travel(seconds)` moves the clock: batch files past `expires_at` vanish (404), unfinished
batches past their 24 h `expires_at` become `expired`.

Output files (purpose `batch_output`, filename `<batch_id>_output.jsonl` / `_error.jsonl`):
one line per request, exactly the real layout
    {"id": "batch_req_<32 hex>", "custom_id": ..., "response": {"status_code", "request_id",
     "body"}, "error": null}
200 responses go to the output file, others to the error file; both are SHUFFLED with the
seeded RNG (`FakeOpenAI(seed=0)`, so runs are reproducible; `shuffle_output=False` to keep
order). `output_file_id` is None when nothing succeeded, `error_file_id` None when nothing
failed. Expired batches add `{"response": null, "error": {"code": "batch_expired", "message":
...}}` lines for unfinished requests; cancelled batches simply omit them (set
`cancelled_error_lines=True` to add `batch_cancelled` lines instead).

Responses. `fake.responder(request_line: dict) -> (status, body)`; replace it freely. The
default (`fake.default_responder`) is deterministic:
  - /v1/chat/completions: a chat.completion whose content is
        "Fake answer for <custom_id>: <last user text, first 500 chars>"
    (sync calls: "Fake answer: <text>"); with response_format json_schema the content is a JSON
    object matching the schema (objects, arrays, enums, const, anyOf, $ref, simple types;
    strings are "<custom_id> <property>"); with json_object it is {"answer": ...}.
    usage: prompt_tokens = estimate_tokens(body), completion_tokens = ceil(len(content) / 4).
  - /v1/responses: a `response` object with one output message / output_text part (same text
    rules, `text.format` json_schema supported) and usage.
  - /v1/embeddings: one unit vector per input (`embedding_dimensions`, default 16, or the
    request's `dimensions`), derived from a hash of the input; base64 when asked.
  - /v1/completions, /v1/moderations and the image/video endpoints: plausible minimal bodies.
Helpers for custom responders: `chat_completion_body(...)`, `error_body(status, ...)`. On the
sync endpoints a responder may return the body as bytes, sent as they are (JSON nested deeper
than json.dumps writes, or not JSON at all).
`fake.use_recorded_responses(path)` answers from a real Batch output file by custom_id: those
lines are written VERBATIM (same ids, request_ids, bodies) into the output/error file; custom_ids
not in the recording fall back to the responder.

Outcome plans: `fake.plan(outcome="completed"|"failed"|"expired"|"cancelled", *,
fail_custom_ids=None, fail_every=None, error_status=500, errors=None, token_limit_exceeded=False,
stop_after=None, batch_id=None)`. Without batch_id, plans queue up and each new batch takes the
next one (`fake.default_plan` applies when the queue is empty). fail_custom_ids / fail_every=N
(every N-th request, 1-based) answer `error_status` with an OpenAI error body instead of calling
the responder. "failed": fails at validation with `errors` (or a generic one; with
token_limit_exceeded the real `token_limit_exceeded` error), no files. "expired"/"cancelled":
after `stop_after` requests (default half) the batch expires / goes cancelling -> cancelled.

Fault injection:
  - `fake.inject(method, path_regex, status, *, times=1, retry_after_ms=None, retry_after=None,
    body=None, headers=None)`: the next `times` matching requests (method "*" = any; regex is
    searched in the path, e.g. r"/v1/files$") answer `status` with an OpenAI-style error body
    (429 rate_limit_exceeded, 500/502/503 server_error, 401 invalid_api_key, 404, ...) plus
    `retry-after-ms` / `retry-after` headers when given. Faults are checked before auth.
    `times=None` means forever; `fake.clear_faults()` removes them.
  - `fake.inject_disconnect(method, path_regex, times=1)`: close the connection without a reply.
  - `fake.break_download(file_id, times=1)`: the next content GET announces the full
    Content-Length, sends half the bytes and closes (the SDK sees an incomplete body; note the
    SDK retries non-streamed reads, so use times > max_retries to make it fail for good).
  - `fake.expire_file(file_id)`: the file is gone (404 everywhere, absent from lists).
  - Odd result lines: `fake.odd_results[custom_id] = odd_result_line(custom_id, kind)` puts that
    raw text in the output file instead of the request's answer (kinds in ODD_RESULT_KINDS:
    content_number, choices_string, message_string, output_part_string, embedding_data_string,
    deep_nesting); `fake.duplicate_results.add(custom_id)` writes its output line twice, the
    second time with other content (" (again)" appended), as a confused server might.
  - `fake.rate_limit(requests_per_second, burst=None, headers=True)`: the sync endpoints go
    through a token bucket like the API's limiter: an empty bucket answers 429
    `rate_limit_exceeded` at once with `retry-after-ms`; answers carry
    `x-ratelimit-limit/remaining/reset-requests` (unless headers=False).
    `fake.rate_limited_count` counts those 429s. `fake.latency = 0.2` delays each sync answer
    (not the 429s) by that many seconds, outside the fake's lock.
  - `fake.echo_auth = True`: every error message repeats the request's Authorization header, as
    a careless proxy or local server might (for redaction tests).
  - `fake.hostile_ids = {"output_file_id": "../../x/file-1", ...}`: batch and file objects are
    sent with these values instead of their ids (keys: batch_id, file_id, input_file_id,
    output_file_id, error_file_id; a file field only replaces an id that is set). Requests still
    use the real ids; the client must refuse such ids before they touch a path.

Introspection for assertions:
    fake.log                        list of (method, path, status); path without query string;
                                    status 0 = connection dropped on purpose
    fake.requests                   list of RequestRecord(method, path, query, status, headers)
                                    (headers lower-cased, Authorization/api-key removed; e.g.
                                    headers["x-stainless-retry-count"] shows SDK retries)
    fake.files / fake.batches       dicts id -> FakeFile / FakeBatch (incl. deleted/expired ones)
    fake.file_content(file_id)      bytes;  fake.output_lines(batch_id, kind="output"|"error")
    fake.upload_count               successful POST /v1/files
    fake.batch_create_count         successful POST /v1/batches
    fake.batches[id].seen           [{"status", "completed", "failed", "total"}] per GET, for
                                    progress-bar tests
    fake.max_concurrent_in_flight   most batches at once in validating/in_progress/finalizing/
                                    cancelling (OpenAI's "in flight");
    fake.max_concurrent_in_progress most batches at once with status exactly in_progress
    fake.tokens_in_flight()         estimated prompt tokens of in-flight batches now;
    fake.max_tokens_in_flight       its high-water mark
    fake.enqueued_token_limit       None; if set, a batch leaving `validating` fails with
                                    token_limit_exceeded when its tokens + those of the batches
                                    already admitted (in_progress/finalizing/cancelling) exceed it
    fake.internal_errors            tracebacks of bugs in the fake itself (the fixture fails
                                    the test if any)
Token estimate (`estimate_tokens(body)`): characters of the text under messages / input /
prompt / instructions (not roles, types, URLs or data: URIs) divided by 4, rounded up, >= 1.

Service profiles: `fake.profile = <profile>` (tests/fake_profiles.py: Azure as documented,
compatible services) reshapes requests and answers around the dispatch; `fake.completion_windows`
({"24h": 86400}) lists the windows a create may ask for.

Azure mode (`fake.azure = True`): also serves `/openai/...` and `/openai/deployments/<name>/...`
(what `openai.AzureOpenAI(azure_endpoint=fake.root_url, api_version=..., api_key=fake.api_key)`
calls), requires the `api-version` query parameter (404 "Resource not found" without it),
checks the `api-key` header (401 with Azure's wording), accepts batch endpoints without the
`/v1` prefix, and renders absent output/error file ids as "" instead of null, as Azure does.

Limits you can lower in tests: max_batch_file_bytes (200 MB), max_batch_requests (50,000),
max_upload_bytes (512 MB), max_validation_errors (100), progress_steps, step_seconds.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import math
import random
import re
import socket
import struct
import threading
import time
import traceback
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, overload
from urllib.parse import parse_qs, unquote, urlsplit

from python_multipart.multipart import MultipartParser, parse_options_header

__all__ = [
    "BATCH_ENDPOINTS",
    "FakeBatch",
    "FakeFile",
    "FakeOpenAI",
    "Plan",
    "RequestRecord",
    "chat_completion_body",
    "chat_request_line",
    "error_body",
    "estimate_tokens",
    "jsonl_bytes",
    "odd_result_line",
    "validate_batch_input",
]

MB = 1024 * 1024
DAY = 86_400
FILE_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
BATCH_ENDPOINTS = (
    "/v1/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
    "/v1/images/generations",
    "/v1/images/edits",
    "/v1/videos",
)
SYNC_ENDPOINTS = ("chat/completions", "embeddings", "responses", "completions", "moderations")
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
IN_FLIGHT = frozenset({"validating", "in_progress", "finalizing", "cancelling"})
OUTCOMES = ("completed", "failed", "expired", "cancelled")
BATCH_CREATE_PARAMS = frozenset(
    {"input_file_id", "endpoint", "completion_window", "metadata", "output_expires_after"}
)
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."
BAD_JSON_MESSAGE = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please contact "
    "us through our help center at help.openai.com.)"
)
MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_TEXT_KEYS = ("messages", "input", "prompt", "instructions")
_NON_TEXT_KEYS = frozenset({"role", "type", "url", "detail", "file_id", "name", "id", "format"})

Responder = Callable[[dict], tuple[int, Any]]


# --------------------------------------------------------------------------------------------
# Errors and small helpers
# --------------------------------------------------------------------------------------------


class FakeApiError(Exception):
    """An error the fake answers with, in OpenAI's envelope."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": type, "param": param, "code": code}}


def error_body(
    status: int,
    message: str | None = None,
    *,
    code: str | None = None,
    type: str | None = None,
    param: str | None = None,
) -> dict:
    """An OpenAI error body for `status`, with the real wording for the common cases."""
    defaults: dict[int, tuple[str, str, str | None]] = {
        400: ("Invalid request.", "invalid_request_error", None),
        401: (
            "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        403: ("You are not allowed to sample from this model", "invalid_request_error", None),
        404: ("The requested resource was not found.", "invalid_request_error", None),
        408: ("Request timed out.", "server_error", None),
        409: ("Conflict.", "invalid_request_error", None),
        429: (
            "Rate limit reached for requests. Please try again in 1ms.",
            "requests",
            "rate_limit_exceeded",
        ),
        500: (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        ),
        502: ("Bad gateway.", "server_error", None),
        503: ("The server is overloaded or not ready yet.", "server_error", None),
    }
    d_msg, d_type, d_code = defaults.get(
        status,
        ("Request failed.", "server_error" if status >= 500 else "invalid_request_error", None),
    )
    return {
        "error": {
            "message": message if message is not None else d_msg,
            "type": type if type is not None else d_type,
            "param": param,
            "code": code if code is not None else d_code,
        }
    }


def _mask_key(key: str) -> str:
    """Mask a key like OpenAI does in 401 messages: never echo it whole."""
    if len(key) <= 8:
        return "*" * len(key)
    return key[:3] + "*" * (len(key) - 7) + key[-4:]


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _missing(param: str) -> FakeApiError:
    return FakeApiError(
        400,
        f"Missing required parameter: '{param}'.",
        param=param,
        code="missing_required_parameter",
    )


def _invalid_value(param: str, value: Any, allowed: Iterable[str]) -> FakeApiError:
    supported = ", ".join(f"'{v}'" for v in allowed)
    return FakeApiError(
        400,
        f"Invalid value: '{value}'. Supported values are: {supported}.",
        param=param,
        code="invalid_value",
    )


def _invalid_type(param: str, value: Any, expected: str) -> FakeApiError:
    return FakeApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {_type_name(value)} instead.",
        param=param,
        code="invalid_type",
    )


def _digest(*parts: Any) -> int:
    """A stable integer from its arguments, so fake content is deterministic across runs."""
    raw = "\x1f".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(raw).digest()[:8], "big")


def jsonl_bytes(lines: Iterable[dict]) -> bytes:
    """Request lines as a JSONL file body (one compact JSON object per line, trailing newline)."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


ODD_RESULT_KINDS = (
    "content_number",
    "choices_string",
    "message_string",
    "output_part_string",
    "embedding_data_string",
    "deep_nesting",
)


def odd_result_line(custom_id: str, kind: str) -> str:
    """A result line that is valid JSON (or nearly: too deep for most parsers) but no answer
    shape the API documents; see FakeOpenAI.odd_results."""
    bodies: dict[str, Any] = {
        "content_number": {"object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": 5}, "finish_reason": "stop"}]},
        "choices_string": {"object": "chat.completion", "choices": "none"},
        "message_string": {"object": "chat.completion", "choices": [{"message": "hi"}]},
        "output_part_string": {"object": "response", "status": "completed",
                               "output": [{"type": "message", "content": ["text"]}]},
        "embedding_data_string": {"object": "list", "data": "vectors"},
    }  # fmt: skip
    head = {"id": "batch_req_odd", "custom_id": custom_id}
    if kind == "deep_nesting":
        depth = 50_000
        body = "[" * depth + "]" * depth
        return (json.dumps(head)[:-1] + ', "response": {"status_code": 200, "body": {"x": '
                + body + '}}, "error": null}')  # fmt: skip
    response = {"status_code": 200, "request_id": "req_odd", "body": bodies[kind]}
    return json.dumps({**head, "response": response, "error": None})


def chat_request_line(
    custom_id: str,
    text: str = "Hello",
    *,
    model: str = "gpt-4o-mini",
    url: str = "/v1/chat/completions",
    **body: Any,
) -> dict:
    """A Batch API request line for a one-message chat completion (for tests' input files)."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": url,
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **body},
    }


# --------------------------------------------------------------------------------------------
# Token estimate and the default responder
# --------------------------------------------------------------------------------------------


def _text_leaves(value: Any, key: str | None = None) -> Iterable[str]:
    if isinstance(value, str):
        if key not in _NON_TEXT_KEYS and not value.startswith("data:"):
            yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            if k not in ("image_url", "input_image", "file"):
                yield from _text_leaves(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from _text_leaves(item, key)


def estimate_tokens(body: Any) -> int:
    """Approximate prompt tokens of a request body: text characters / 4, at least 1.

    Counts strings under messages/input/prompt/instructions, skipping roles, types, URLs and
    data: URIs, so a quota test can reason about it without a tokenizer.
    """
    if not isinstance(body, dict):
        return 1
    chars = sum(len(s) for k in _TEXT_KEYS for s in _text_leaves(body.get(k)))
    return max(1, math.ceil(chars / 4))


def _last_user_text(body: dict) -> str:
    """The text of the last user turn (chat messages or responses input), for echoing."""
    messages = body.get("messages")
    if messages is None:
        messages = body.get("input")
    if isinstance(messages, str):
        return messages
    if not isinstance(messages, list):
        return ""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role", "user") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return "\n".join(
                    str(part.get("text", ""))
                    for part in content
                    if isinstance(part, dict) and part.get("type") in ("text", "input_text")
                )
    return ""


def _resolve_ref(schema: dict, root: dict) -> dict:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _fake_value(schema: Any, seed: str, name: str, root: dict, depth: int = 0) -> Any:
    """A value matching a (simple) JSON schema, deterministic in `seed` and the property name."""
    if not isinstance(schema, dict) or depth > 8:
        return f"{seed} {name}".strip()
    schema = _resolve_ref(schema, root)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        options = schema["enum"]
        return options[_digest(seed, name) % len(options)]
    for combo in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combo) or [] if isinstance(o, dict)]
        non_null = [o for o in options if o.get("type") != "null"]
        if non_null:
            return _fake_value(non_null[0], seed, name, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        return {p: _fake_value(s, seed, p, root, depth + 1) for p, s in props.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [
            _fake_value(schema.get("items") or {}, seed, f"{name}{i}", root, depth + 1)
            for i in range(count)
        ]
    if kind == "integer":
        low = int(schema.get("minimum", 0))
        high = int(schema.get("maximum", low + 100))
        return low + _digest(seed, name) % (high - low + 1)
    if kind == "number":
        low = float(schema.get("minimum", 0.0))
        high = float(schema.get("maximum", low + 1.0))
        return round(low + (high - low) * (_digest(seed, name) % 1000) / 1000, 3)
    if kind == "boolean":
        return _digest(seed, name) % 2 == 0
    if kind == "null":
        return None
    return f"{seed} {name}".strip()


def _structured_schema(body: dict) -> tuple[str | None, dict | None]:
    """('json_schema', schema) / ('json_object', None) / (None, None) for a request body."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        text = body.get("text")
        fmt = text.get("format") if isinstance(text, dict) else None
    if not isinstance(fmt, dict):
        return None, None
    if fmt.get("type") == "json_schema":
        holder = fmt.get("json_schema") if isinstance(fmt.get("json_schema"), dict) else fmt
        schema = holder.get("schema")
        return "json_schema", schema if isinstance(schema, dict) else {}
    if fmt.get("type") == "json_object":
        return "json_object", None
    return None, None


def _answer_text(body: dict, custom_id: str | None) -> str:
    """The deterministic assistant text for a request (plain, json_schema or json_object)."""
    seed = custom_id or "sync"
    kind, schema = _structured_schema(body)
    text = _last_user_text(body)[:500]
    if kind == "json_schema":
        return json.dumps(_fake_value(schema or {}, seed, "", schema or {}))
    if kind == "json_object":
        return json.dumps({"answer": f"{seed}: {text[:100]}"})
    if custom_id is None:
        return f"Fake answer: {text}"
    return f"Fake answer for {custom_id}: {text}"


def chat_completion_body(
    model: str,
    content: str | None,
    *,
    prompt_tokens: int = 10,
    completion_tokens: int | None = None,
    finish_reason: str = "stop",
    refusal: str | None = None,
    completion_id: str = "chatcmpl-fake",
    created: int | None = None,
) -> dict:
    """A chat.completion body in the exact shape the API returns (for custom responders)."""
    if completion_tokens is None:
        completion_tokens = max(1, math.ceil(len(content or refusal or "") / 4))
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(created if created is not None else time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_fake0000",
    }


def _embedding_vector(text: str, dims: int) -> list[float]:
    """A deterministic unit vector for `text`."""
    raw = b""
    counter = 0
    while len(raw) < dims * 4:
        raw += hashlib.sha256(f"{counter}:{text}".encode()).digest()
        counter += 1
    values = [(b - 127.5) / 127.5 for b in raw[: dims * 4 : 4]]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


# --------------------------------------------------------------------------------------------
# State objects
# --------------------------------------------------------------------------------------------


@dataclass
class RequestRecord:
    """One HTTP request the fake saw (headers lower-cased, Authorization removed)."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    headers: dict[str, str]


@dataclass
class FakeFile:
    """An uploaded or generated file."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int
    expires_at: int | None
    seq: int
    expired: bool = False
    deleted: bool = False

    @property
    def gone(self) -> bool:
        return self.expired or self.deleted

    def to_api(self) -> dict:
        return {
            "id": self.id,
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "object": "file",
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": self.expires_at,
            "status_details": None,
        }


@dataclass
class Plan:
    """How a batch will end; see FakeOpenAI.plan."""

    outcome: str = "completed"
    fail_custom_ids: frozenset[str] = frozenset()
    fail_every: int | None = None
    error_status: int = 500
    errors: list[dict] | None = None
    token_limit_exceeded: bool = False
    stop_after: int | None = None

    def fails(self, index: int, custom_id: str) -> bool:
        """Whether request number `index` (0-based) is planned to fail."""
        if custom_id in self.fail_custom_ids:
            return True
        return bool(self.fail_every) and (index + 1) % self.fail_every == 0


class _RequestLines(Sequence[dict]):
    """The request lines of a validated input file, each parsed when it is read: a batch
    holds the file's bytes and line offsets, not a parsed dict per request (a million
    requests would take gigabytes)."""

    def __init__(self, data: bytes, count: int) -> None:
        self._data = data
        self._starts = array("q", [0])
        for match in re.finditer(b"\n", data):
            if len(self._starts) > count:
                break
            self._starts.append(match.end())
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> dict: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict]: ...

    def __getitem__(self, index: int | slice) -> dict | list[dict]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not -self._count <= index < self._count:
            raise IndexError(index)
        index %= self._count
        start, end = (
            self._starts[index],
            self._starts[index + 1] if index + 1 < len(self._starts) else len(self._data),
        )
        return json.loads(self._data[start:end])


@dataclass
class FakeBatch:
    """A batch and its hidden processing state."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    metadata: dict | None
    created_at: int
    expires_at: int
    plan: Plan
    seq: int
    output_expires_seconds: int | None = None
    status: str = "validating"
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    errors: list[dict] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    model: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_tokens_estimate: int = 0
    requests: Sequence[dict] = field(default_factory=list)
    next_index: int = 0
    ok_lines: list[str] = field(default_factory=list)
    error_lines: list[str] = field(default_factory=list)
    seen: list[dict] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    def counts(self) -> dict:
        return {"completed": self.completed, "failed": self.failed, "total": self.total}

    def to_api(self, absent_file_id: str | None = None) -> dict:
        """The Batch JSON; Azure sends "" (absent_file_id) where OpenAI sends null."""
        errors = None if self.errors is None else {"object": "list", "data": self.errors}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": self.endpoint,
            "errors": errors,
            "input_file_id": self.input_file_id,
            "completion_window": self.completion_window,
            "status": self.status,
            "output_file_id": self.output_file_id or absent_file_id,
            "error_file_id": self.error_file_id or absent_file_id,
            "created_at": self.created_at,
            "in_progress_at": self.in_progress_at,
            "expires_at": self.expires_at,
            "finalizing_at": self.finalizing_at,
            "completed_at": self.completed_at,
            "failed_at": self.failed_at,
            "expired_at": self.expired_at,
            "cancelling_at": self.cancelling_at,
            "cancelled_at": self.cancelled_at,
            "request_counts": self.counts(),
            "metadata": self.metadata,
            "model": self.model,
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }


@dataclass
class _Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None
    headers: dict[str, str]
    body: Any
    disconnect: bool = False

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and self.pattern.search(path) is not None


@dataclass
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    truncate: bool = False
    disconnect: bool = False
    delay: float = 0.0  # seconds the handler waits before answering (outside the fake's lock)


def _json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> _Reply:
    """`payload` as JSON; bytes are sent as they are (a reply no json.dumps could write)."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return _Reply(status, body, headers=dict(headers or {}))


# --------------------------------------------------------------------------------------------
# Request input file validation (what the service does when a batch leaves `validating`)
# --------------------------------------------------------------------------------------------


def _line_error(code: str, message: str, line: int | None, param: str | None = None) -> dict:
    return {"code": code, "message": message, "param": param, "line": line}


def validate_batch_input(
    data: bytes,
    endpoint: str,
    *,
    max_bytes: int = 200 * MB,
    max_requests: int = 50_000,
    max_errors: int = 100,
) -> tuple[list[dict], list[dict]]:
    """Parse and check a batch input file like the service; returns (requests, errors)."""
    if len(data) > max_bytes:
        message = (
            f"The batch input file is larger than the {max_bytes} byte limit ({len(data)} bytes)."
        )
        return [], [_line_error("file_too_large", message, None)]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return [], [_line_error("invalid_file_format", "The file is not valid UTF-8.", None)]
    lines = text.split("\n")
    if lines and lines[-1].strip() == "":
        lines.pop()
    if not any(line.strip() for line in lines):
        return [], [_line_error("empty_file", "The batch input file is empty.", None)]
    if len(lines) > max_requests:
        message = (
            f"The batch input file contains {len(lines)} requests; a batch may contain at "
            f"most {max_requests} requests."
        )
        return [], [_line_error("too_many_tasks", message, None)]
    requests: list[dict] = []
    errors: list[dict] = []
    seen_ids: set[str] = set()
    first_model: str | None = None
    embedding_inputs = 0
    for number, raw in enumerate(lines, start=1):
        problem, parsed = _check_line(raw, number, endpoint, seen_ids)
        if problem is None and parsed is not None:
            model = parsed["body"]["model"]
            if first_model is None:
                first_model = model
            elif model != first_model:
                problem = _line_error(
                    "model_mismatch",
                    f"The provided model '{model}' does not match the model '{first_model}' "
                    "used by the other requests in this batch. All requests in a batch must "
                    "use the same model.",
                    number,
                    "body.model",
                )
        if problem is not None:
            errors.append(problem)
            if len(errors) >= max_errors:
                break
            continue
        assert parsed is not None
        seen_ids.add(parsed["custom_id"])
        if endpoint == "/v1/embeddings":
            inputs = parsed["body"].get("input")
            embedding_inputs += len(inputs) if isinstance(inputs, list) else 1
        requests.append(parsed)
    if not errors and embedding_inputs > 50_000:
        message = (
            f"The batch contains {embedding_inputs} embedding inputs; /v1/embeddings batches "
            "are limited to 50000 inputs across all requests."
        )
        errors.append(_line_error("too_many_tasks", message, None))
    return requests, errors


def _check_line(
    raw: str, number: int, endpoint: str, seen_ids: set[str]
) -> tuple[dict | None, dict | None]:
    """(error, None) for a bad line, (None, parsed) for a good one."""
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        message = "This line is not parseable as valid JSON."
        return _line_error("invalid_json_line", message, number), None
    for key in ("custom_id", "method", "url", "body"):
        if key not in parsed:
            message = f"Missing required parameter: '{key}'."
            return _line_error("missing_required_parameter", message, number, key), None
    for key in ("custom_id", "method", "url"):
        if not isinstance(parsed[key], str):
            message = (
                f"Invalid type for '{key}': expected a string, but got {_type_name(parsed[key])}."
            )
            return _line_error("invalid_type", message, number, key), None
    if not isinstance(parsed["body"], dict):
        message = (
            f"Invalid type for 'body': expected an object, but got {_type_name(parsed['body'])}."
        )
        return _line_error("invalid_type", message, number, "body"), None
    if parsed["method"] != "POST":
        message = f"Invalid value: '{parsed['method']}'. Supported values are: 'POST'."
        return _line_error("invalid_method", message, number, "method"), None
    if parsed["url"] != endpoint:
        message = (
            f"The URL provided for this request ('{parsed['url']}') does not match the batch "
            f"endpoint ('{endpoint}')."
        )
        return _line_error("url_mismatch", message, number, "url"), None
    if parsed["custom_id"] in seen_ids:
        message = (
            "The custom_id for this request is a duplicate of another request. The custom_id "
            "parameter must be unique for each individual request in a batch."
        )
        return _line_error("duplicate_custom_id", message, number, "custom_id"), None
    model = parsed["body"].get("model")
    if not isinstance(model, str) or not model:
        message = "Missing required parameter: 'body.model'."
        return _line_error("missing_required_parameter", message, number, "body.model"), None
    return None, parsed


# --------------------------------------------------------------------------------------------
# The fake service
# --------------------------------------------------------------------------------------------


class FakeOpenAI:
    """The fake service: state, lifecycle, routing, and the HTTP server around it."""

    def __init__(self, *, seed: int = 0, api_key: str | None = None) -> None:
        self.seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self.api_key = api_key or "sk-fake-" + "".join(
            self._rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=24)
        )
        self.host = "127.0.0.1"
        self.port: int | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Behaviour knobs.
        self.auto_advance = True
        self.advance_on_list = False  # with auto_advance: a list page advances its batches too
        self.progress_steps = 3
        self.step_seconds = 30
        self.shuffle_output = True
        self.cancelled_error_lines = False
        self.embedding_dimensions = 16
        self.azure = False
        # Windows a create may ask for, and their length (Groq-like services: "24h" to "7d").
        self.completion_windows: dict[str, int] = {"24h": DAY}
        # A service profile (tests/fake_profiles.py) that reshapes requests and answers.
        self.profile: Any = None
        self.enqueued_token_limit: int | None = None
        self.max_batch_file_bytes = 200 * MB
        self.max_batch_requests = 50_000
        self.max_upload_bytes = 512 * MB
        self.max_validation_errors = 100
        self.responder: Responder = self.default_responder
        self.default_plan = Plan()
        # State.
        self._now = int(time.time())
        self._seq = 0
        self._plans: list[Plan] = []
        self._faults: list[_Fault] = []
        self._broken_downloads: dict[str, int] = {}
        self._recorded: dict[str, str] = {}
        self.odd_results: dict[str, str] = {}  # custom_id -> raw output line (see docstring)
        self.duplicate_results: set[str] = set()
        self.files: dict[str, FakeFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        # Introspection.
        self.log: list[tuple[str, str, int]] = []
        self.requests: list[RequestRecord] = []
        self.internal_errors: list[str] = []
        self.upload_count = 0
        self.batch_create_count = 0
        self.max_concurrent_in_flight = 0
        self.max_concurrent_in_progress = 0
        self.max_tokens_in_flight = 0
        # Sync endpoints: latency, a token-bucket rate limit, an auth-echoing server.
        self.latency = 0.0
        self.echo_auth = False
        self._bucket: _TokenBucket | None = None
        self.rate_limited_count = 0
        self.hostile_ids: dict[str, str] = {}

    # ---------------------------------------------------------------- server lifecycle

    @property
    def root_url(self) -> str:
        """http://127.0.0.1:<port> (the Azure endpoint form, without /v1)."""
        if self.port is None:
            raise RuntimeError("FakeOpenAI is not started")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start(self) -> FakeOpenAI:
        """Serve on 127.0.0.1:<free port> from a daemon thread."""
        server = ThreadingHTTPServer((self.host, 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client(self, strict: bool = True, max_retries: int = 2, **kwargs: Any) -> Any:
        """An `openai.OpenAI` client pointed at this fake."""
        import openai

        kwargs.setdefault("timeout", 30.0)
        return openai.OpenAI(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=max_retries,
            _strict_response_validation=strict,
            **kwargs,
        )

    # ---------------------------------------------------------------- ids, clock, metrics

    def now(self) -> int:
        """The fake's virtual clock (Unix seconds)."""
        return self._now

    def _tick(self, seconds: int) -> int:
        self._now += seconds
        return self._now

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _hex(self, n: int) -> str:
        return "".join(self._rng.choices("0123456789abcdef", k=n))

    def _alnum(self, n: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        return "".join(self._rng.choices(alphabet, k=n))

    def tokens_in_flight(self, exclude: str | None = None) -> int:
        """Estimated prompt tokens of batches in validating/in_progress/finalizing/cancelling."""
        with self._lock:
            return sum(
                b.prompt_tokens_estimate
                for b in self.batches.values()
                if b.status in IN_FLIGHT and b.id != exclude
            )

    def _admitted_tokens(self) -> int:
        """Tokens of batches already past validation and not finished (what the limit counts)."""
        return sum(
            b.prompt_tokens_estimate
            for b in self.batches.values()
            if b.status in IN_FLIGHT and b.status != "validating"
        )

    def _update_metrics(self) -> None:
        in_flight = [b for b in self.batches.values() if b.status in IN_FLIGHT]
        in_progress = [b for b in in_flight if b.status == "in_progress"]
        self.max_concurrent_in_flight = max(self.max_concurrent_in_flight, len(in_flight))
        self.max_concurrent_in_progress = max(self.max_concurrent_in_progress, len(in_progress))
        self.max_tokens_in_flight = max(self.max_tokens_in_flight, self.tokens_in_flight())

    # ---------------------------------------------------------------- test controls

    def plan(
        self,
        outcome: str = "completed",
        *,
        fail_custom_ids: Iterable[str] | None = None,
        fail_every: int | None = None,
        error_status: int = 500,
        errors: list[dict] | None = None,
        token_limit_exceeded: bool = False,
        stop_after: int | None = None,
        batch_id: str | None = None,
    ) -> Plan:
        """Decide how the next created batch (or `batch_id`) ends; see the module docstring."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, not {outcome!r}")
        if token_limit_exceeded:
            outcome = "failed"
        plan = Plan(
            outcome=outcome,
            fail_custom_ids=frozenset(fail_custom_ids or ()),
            fail_every=fail_every,
            error_status=error_status,
            errors=[
                {"code": None, "message": None, "param": None, "line": None, **e} for e in errors
            ]
            if errors
            else None,
            token_limit_exceeded=token_limit_exceeded,
            stop_after=stop_after,
        )
        with self._lock:
            if batch_id is None:
                self._plans.append(plan)
            else:
                self.batches[batch_id].plan = plan
        return plan

    def advance(self, batch_id: str | None = None, steps: int = 1) -> None:
        """Move one batch (or every unfinished batch) `steps` steps forward."""
        with self._lock:
            for _ in range(steps):
                targets = [self.batches[batch_id]] if batch_id else list(self.batches.values())
                targets = [b for b in targets if not b.done]
                if not targets:
                    return
                self._tick(self.step_seconds)
                for batch in targets:
                    self._step(batch)

    def finish(self, batch_id: str | None = None) -> None:
        """Advance until the batch (or every batch) reaches a final status."""
        with self._lock:
            for _ in range(100_000):
                targets = [self.batches[batch_id]] if batch_id else list(self.batches.values())
                if all(b.done for b in targets):
                    return
                self.advance(batch_id)
            raise RuntimeError("batch did not finish")  # pragma: no cover

    def travel(self, seconds: int) -> None:
        """Move the virtual clock: expire batch uploads and unfinished batches past their time."""
        with self._lock:
            self._tick(seconds)
            for f in self.files.values():
                if f.expires_at is not None and f.expires_at <= self._now:
                    f.expired = True
            for batch in self.batches.values():
                if not batch.done and batch.expires_at <= self._now:
                    self._expire(batch)
            self._update_metrics()

    def expire_file(self, file_id: str) -> None:
        """Make a file vanish as if its 30 days were up (404 from now on)."""
        with self._lock:
            self.files[file_id].expired = True

    def inject(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        times: int | None = 1,
        retry_after_ms: float | None = None,
        retry_after: float | str | None = None,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        """Fail the next `times` requests matching method and path regex with `status`."""
        extra = dict(headers or {})
        if retry_after_ms is not None:
            extra["retry-after-ms"] = str(retry_after_ms)
        if retry_after is not None:
            extra["retry-after"] = str(retry_after)
        fault = _Fault(method.upper(), re.compile(path_regex), status, times, extra, body)
        with self._lock:
            self._faults.append(fault)

    def inject_disconnect(self, method: str, path_regex: str, *, times: int | None = 1) -> None:
        """Drop the connection without answering the next `times` matching requests."""
        fault = _Fault(method.upper(), re.compile(path_regex), 0, times, {}, None, disconnect=True)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._broken_downloads.clear()

    def rate_limit(
        self, requests_per_second: float, *, burst: float | None = None, headers: bool = True
    ) -> None:
        """Serve the sync endpoints through a token bucket, as the API's rate limiter does.

        `requests_per_second` refill (0 refuses everything), `burst` tokens deep (default one
        second's worth, at least 1). An empty bucket answers 429 `rate_limit_exceeded` at once
        with `retry-after-ms` (time until the next token); with `headers`, every sync answer
        carries `x-ratelimit-limit/remaining/reset-requests` like OpenAI's.
        """
        capacity = burst if burst is not None else max(1.0, requests_per_second)
        with self._lock:
            self._bucket = _TokenBucket(requests_per_second, capacity, headers)

    def break_download(self, file_id: str, times: int = 1) -> None:
        """Send only half of the next `times` downloads of `file_id`, then close."""
        with self._lock:
            self._broken_downloads[file_id] = self._broken_downloads.get(file_id, 0) + times

    def use_recorded_responses(self, path: str | Path) -> None:
        """Answer requests whose custom_id appears in a real Batch output file with that line."""
        recorded: dict[str, str] = {}
        for raw in Path(path).read_text(encoding="utf-8").splitlines():
            if raw.strip():
                recorded[json.loads(raw)["custom_id"]] = raw.strip()
        with self._lock:
            self._recorded = recorded

    def add_file(
        self,
        data: bytes,
        filename: str = "upload.jsonl",
        purpose: str = "batch",
        *,
        expires_at: int | None = None,
    ) -> FakeFile:
        """Put a file on the fake directly (no HTTP), e.g. to serve a recorded output file."""
        with self._lock:
            return self._new_file(data, filename, purpose, expires_at)

    def file_content(self, file_id: str) -> bytes:
        return self.files[file_id].data

    def output_lines(self, batch_id: str, kind: str = "output") -> list[dict]:
        """The parsed lines of a batch's output (or error) file, in file order."""
        batch = self.batches[batch_id]
        file_id = batch.output_file_id if kind == "output" else batch.error_file_id
        if file_id is None:
            return []
        return [json.loads(line) for line in self.files[file_id].data.decode().splitlines()]

    # ---------------------------------------------------------------- the default responder

    def default_responder(self, request_line: dict) -> tuple[int, Any]:
        """A deterministic, realistic 200 answer for any endpoint; see the module docstring."""
        body = request_line.get("body") or {}
        custom_id = request_line.get("custom_id")
        url = request_line.get("url") or "/v1/chat/completions"
        url = url if url.startswith("/v1/") else "/v1" + url  # Azure batches omit the /v1
        model = str(body.get("model", "gpt-4o-mini"))
        with self._lock:
            created = self._now
            rid = self._alnum(29)
            hid = self._hex(48)
        if url == "/v1/chat/completions":
            content = _answer_text(body, custom_id)
            return 200, chat_completion_body(
                model,
                content,
                prompt_tokens=estimate_tokens(body),
                completion_id=f"chatcmpl-{rid}",
                created=created,
            )
        if url == "/v1/responses":
            return 200, self._response_body(body, custom_id, model, created, hid)
        if url == "/v1/embeddings":
            return 200, self._embedding_body(body, model)
        if url == "/v1/completions":
            text = f"Fake completion for {custom_id or 'sync'}: {str(body.get('prompt', ''))[:200]}"
            prompt_tokens = estimate_tokens(body)
            completion_tokens = max(1, math.ceil(len(text) / 4))
            return 200, {
                "id": f"cmpl-{rid}",
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [{"text": text, "index": 0, "logprobs": None, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        if url == "/v1/moderations":
            return 200, self._moderation_body(body, model, rid)
        return 200, {"created": created, "data": [{"b64_json": "", "revised_prompt": None}]}

    def _response_body(
        self, body: dict, custom_id: str | None, model: str, created: int, hid: str
    ) -> dict:
        text = _answer_text(body, custom_id)
        input_tokens = estimate_tokens(body)
        output_tokens = max(1, math.ceil(len(text) / 4))
        text_config = body.get("text") if isinstance(body.get("text"), dict) else None
        return {
            "id": f"resp_{hid}",
            "object": "response",
            "created_at": created,
            "status": "completed",
            "background": False,
            "completed_at": created,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": model,
            "output": [
                {
                    "id": f"msg_{hid[::-1]}",
                    "type": "message",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
                    ],
                    "role": "assistant",
                }
            ],
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "prompt_cache_key": None,
            "reasoning": {"effort": None, "summary": None},
            "safety_identifier": None,
            "service_tier": "default",
            "store": True,
            "temperature": body.get("temperature", 1.0),
            "text": text_config or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto",
            "tools": [],
            "top_logprobs": 0,
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    def _embedding_body(self, body: dict, model: str) -> dict:
        inputs = body.get("input", "")
        items = inputs if isinstance(inputs, list) and inputs else [inputs]
        if items and all(isinstance(i, int) for i in items):
            items = [items]  # a single pre-tokenized input
        dims = int(body.get("dimensions") or self.embedding_dimensions)
        data = []
        for index, item in enumerate(items):
            vector = _embedding_vector(json.dumps(item), dims)
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        tokens = sum(max(1, math.ceil(len(json.dumps(i)) / 4)) for i in items)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    def _moderation_body(self, body: dict, model: str, rid: str) -> dict:
        inputs = body.get("input", "")
        items = inputs if isinstance(inputs, list) else [inputs]
        result = {
            "flagged": False,
            "categories": dict.fromkeys(MODERATION_CATEGORIES, False),
            "category_scores": dict.fromkeys(MODERATION_CATEGORIES, 0.0001),
            "category_applied_input_types": {c: ["text"] for c in MODERATION_CATEGORIES},
        }
        return {"id": f"modr-{rid}", "model": model, "results": [result for _ in items]}

    # ---------------------------------------------------------------- batch lifecycle

    def _new_file(
        self, data: bytes, filename: str, purpose: str, expires_at: int | None
    ) -> FakeFile:
        created = self._tick(1)
        f = FakeFile(
            id="file-" + self._alnum(22),
            filename=filename,
            purpose=purpose,
            data=data,
            created_at=created,
            expires_at=expires_at,
            seq=self._next_seq(),
        )
        self.files[f.id] = f
        return f

    def _step(self, batch: FakeBatch) -> None:
        """One status step for one batch (the clock was already moved)."""
        now = self._now
        if batch.done:
            return
        if batch.expires_at <= now:
            self._expire(batch)
        elif batch.status == "validating":
            self._validate(batch)
        elif batch.status == "in_progress":
            if batch.next_index < batch.total:
                self._process_chunk(batch)
            else:
                batch.status = "finalizing"
                batch.finalizing_at = now
        elif batch.status == "finalizing":
            self._write_outputs(batch)
            batch.status = "completed"
            batch.completed_at = now
        elif batch.status == "cancelling":
            self._write_outputs(batch, unfinished="cancelled")
            batch.status = "cancelled"
            batch.cancelled_at = now
        self._update_metrics()

    def _validate(self, batch: FakeBatch) -> None:
        plan = batch.plan
        input_file = self.files[batch.input_file_id]
        requests, errors = validate_batch_input(
            input_file.data,
            batch.endpoint,
            max_bytes=self.max_batch_file_bytes,
            max_requests=self.max_batch_requests,
            max_errors=self.max_validation_errors,
        )
        model = requests[0]["body"]["model"] if requests else None
        if not errors and plan.outcome == "failed":
            if plan.token_limit_exceeded:
                errors = [self._token_limit_error(model)]
            else:
                errors = plan.errors or [
                    _line_error("batch_failed", "The batch failed during validation.", None)
                ]
        limit = self.enqueued_token_limit
        enqueued = self._admitted_tokens() + batch.prompt_tokens_estimate
        if not errors and limit is not None and enqueued > limit:
            errors = [self._token_limit_error(model)]
        if errors:
            batch.status = "failed"
            batch.failed_at = self._now
            batch.errors = errors
            return
        batch.requests = _RequestLines(input_file.data, len(requests))  # each parsed when used
        batch.total = len(requests)
        batch.model = model
        batch.status = "in_progress"
        batch.in_progress_at = self._now

    def _token_limit_error(self, model: str | None) -> dict:
        limit = self.enqueued_token_limit or 90_000
        message = (
            f"Enqueued token limit reached for {model or 'gpt-4o'} in organization org-fake. "
            f"Limit: {limit:,} enqueued tokens. Please try again once some in_progress batches "
            "have been completed."
        )
        return _line_error("token_limit_exceeded", message, None)

    def _stop_point(self, batch: FakeBatch) -> int | None:
        plan = batch.plan
        if plan.outcome not in ("expired", "cancelled"):
            return None
        if plan.stop_after is not None:
            return min(plan.stop_after, batch.total)
        return batch.total // 2

    def _process_chunk(self, batch: FakeBatch) -> None:
        chunk = max(1, math.ceil(batch.total / max(1, self.progress_steps)))
        stop = self._stop_point(batch)
        end = min(batch.total, batch.next_index + chunk)
        if stop is not None:
            end = min(end, stop)
        while batch.next_index < end:
            self._process_one(batch, batch.next_index)
            batch.next_index += 1
        if stop is not None and batch.next_index >= stop:
            if batch.plan.outcome == "expired":
                self._expire(batch)
            else:
                batch.status = "cancelling"
                batch.cancelling_at = self._now

    def _process_one(self, batch: FakeBatch, index: int) -> None:
        line = batch.requests[index]
        custom_id = line["custom_id"]
        recorded = self._recorded.get(custom_id)
        if batch.plan.fails(index, custom_id):
            status, body = batch.plan.error_status, error_body(batch.plan.error_status)
        elif recorded is not None:
            parsed = json.loads(recorded)
            response = parsed.get("response") or {}
            ok = response.get("status_code") == 200 and parsed.get("error") is None
            self._count(batch, ok, response.get("body"))
            (batch.ok_lines if ok else batch.error_lines).append(recorded)
            return
        else:
            status, body = self.responder(line)  # runs under the (re-entrant) state lock
        out = {
            "id": "batch_req_" + self._hex(32),
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": self._hex(32), "body": body},
            "error": None,
        }
        ok = status == 200
        self._count(batch, ok, body)
        (batch.ok_lines if ok else batch.error_lines).append(json.dumps(out))

    def _count(self, batch: FakeBatch, ok: bool, body: Any) -> None:
        if ok:
            batch.completed += 1
        else:
            batch.failed += 1
        usage = body.get("usage") if isinstance(body, dict) else None
        if isinstance(usage, dict):
            batch.input_tokens += int(usage.get("prompt_tokens", usage.get("input_tokens", 0)))
            batch.output_tokens += int(
                usage.get("completion_tokens", usage.get("output_tokens", 0))
            )

    def _expire(self, batch: FakeBatch) -> None:
        self._write_outputs(batch, unfinished="expired")
        batch.status = "expired"
        batch.expired_at = self._now

    def _write_outputs(self, batch: FakeBatch, unfinished: str | None = None) -> None:
        """Create the output and error files (shuffled) for what the batch got done."""
        error_lines = list(batch.error_lines)
        pending = batch.requests[batch.next_index :]
        if unfinished == "expired" or (unfinished == "cancelled" and self.cancelled_error_lines):
            code, message = (
                ("batch_expired", EXPIRED_MESSAGE)
                if unfinished == "expired"
                else ("batch_cancelled", CANCELLED_MESSAGE)
            )
            for line in pending:
                out = {
                    "id": "batch_req_" + self._hex(32),
                    "custom_id": line["custom_id"],
                    "response": None,
                    "error": {"code": code, "message": message},
                }
                error_lines.append(json.dumps(out))
        ok_lines = self._odd_lines(batch.ok_lines)
        if self.shuffle_output:
            # Its own RNG per batch: the order must not depend on how many ids were drawn.
            shuffler = random.Random(_digest(self.seed, batch.seq))
            shuffler.shuffle(ok_lines)
            shuffler.shuffle(error_lines)
        expires = None
        if batch.output_expires_seconds is not None:
            expires = self._now + batch.output_expires_seconds
        if ok_lines:
            data = ("\n".join(ok_lines) + "\n").encode()
            name = f"{batch.id}_output.jsonl"
            batch.output_file_id = self._new_file(data, name, "batch_output", expires).id
        if error_lines:
            data = ("\n".join(error_lines) + "\n").encode()
            name = f"{batch.id}_error.jsonl"
            batch.error_file_id = self._new_file(data, name, "batch_output", expires).id
        # The batch is over: its files hold the lines now (a million rows fit in memory).
        batch.requests, batch.ok_lines, batch.error_lines = [], [], []

    def _odd_lines(self, lines: list[str]) -> list[str]:
        """The output lines with `odd_results` swapped in and `duplicate_results` repeated."""
        if not self.odd_results and not self.duplicate_results:
            return list(lines)
        out = []
        for line in lines:
            record = json.loads(line)
            custom_id = record["custom_id"]
            out.append(self.odd_results.get(custom_id, line))
            if custom_id in self.duplicate_results:
                choices = record["response"]["body"].get("choices") or []
                if choices:
                    choices[0]["message"]["content"] = (
                        choices[0]["message"]["content"] or ""
                    ) + " (again)"
                out.append(json.dumps(record))
        return out

    # ---------------------------------------------------------------- HTTP dispatch

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Reply:
        """Answer one HTTP request (called by the server thread)."""
        split = urlsplit(target)
        path = unquote(split.path)
        query = parse_qs(split.query, keep_blank_values=True)
        with self._lock:
            try:
                if self.profile is not None:
                    reply = self.profile.serve(self, method, path, query, headers, body)
                else:
                    reply = self._dispatch(method, path, query, headers, body)
            except FakeApiError as exc:
                reply = _json_reply(exc.status, exc.body)
            except Exception:
                self.internal_errors.append(traceback.format_exc())
                reply = _json_reply(500, error_body(500, "fake_openai internal error"))
            if self.echo_auth and reply.status >= 400:
                reply = self._echo_auth(reply, headers)
            reply.headers.setdefault("x-request-id", "req_" + self._hex(32))
            reply.headers.setdefault("openai-version", "2020-10-01")
            reply.headers.setdefault("openai-processing-ms", "3")
            status = 0 if reply.disconnect else reply.status
            self.log.append((method, path, status))
            safe_headers = {
                k: v for k, v in headers.items() if k not in ("authorization", "api-key")
            }
            self.requests.append(RequestRecord(method, path, query, status, safe_headers))
        return reply

    def _echo_auth(self, reply: _Reply, headers: dict[str, str]) -> _Reply:
        """A careless server: its error message repeats the request's Authorization header."""
        try:
            payload = json.loads(reply.body)
            payload["error"]["message"] += f" (Authorization: {headers.get('authorization')})"
        except (ValueError, KeyError, TypeError):
            return reply
        return _json_reply(reply.status, payload, reply.headers)

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.matches(method, path):
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> _Reply:
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.disconnect:
                return _Reply(0, disconnect=True)
            payload = fault.body if fault.body is not None else error_body(fault.status)
            return _json_reply(fault.status, payload, fault.headers)
        if path.startswith("/openai/") and self.azure:
            path = self._azure_path(path, query, headers)
        else:
            self._check_auth(headers)
        for route_method, pattern, name in _ROUTES:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                handler = getattr(self, name)
                return handler(query=query, headers=headers, body=body, **match.groupdict())
        raise FakeApiError(404, f"Invalid URL ({method} {path})")

    def _azure_path(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> str:
        """Check Azure's api-version and api-key, and map /openai/... onto the /v1 routes."""
        if not _one(query, "api-version"):
            raise FakeApiError(404, "Resource not found", type="", code="404")
        bearer = headers.get("authorization", "")
        given = headers.get("api-key") or (bearer[7:] if bearer.startswith("Bearer ") else "")
        if given != self.api_key:
            raise FakeApiError(
                401,
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
                "to provide a valid key for an active subscription and use a correct regional "
                "API endpoint for your resource.",
                type="",
                code="401",
            )
        rest = re.sub(r"^/openai(/deployments/[^/]+)?", "", path)
        return rest if rest.startswith("/v1/") else "/v1" + rest

    def _check_auth(self, headers: dict[str, str]) -> None:
        auth = _basic_as_bearer(headers.get("authorization", ""))
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            raise FakeApiError(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )
        given = auth[7:].strip()
        if given != self.api_key:
            raise FakeApiError(
                401,
                f"Incorrect API key provided: {_mask_key(given)}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                code="invalid_api_key",
            )

    # ---------------------------------------------------------------- files endpoints

    def _live_file(self, file_id: str, param: str = "id") -> FakeFile:
        f = self.files.get(file_id)
        if f is not None and not f.gone and f.expires_at is not None and f.expires_at <= self._now:
            f.expired = True
        if f is None or f.gone:
            raise FakeApiError(404, f"No such File object: {file_id}", param=param)
        return f

    def _create_file(self, *, headers: dict[str, str], body: bytes, **_: Any) -> _Reply:
        content_type = headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            raise FakeApiError(
                400,
                f"Invalid Content-Type header ({content_type}), expected multipart/form-data. "
                "(HINT: If you're using curl, you can pass -H 'Content-Type: "
                "multipart/form-data')",
            )
        fields, files = _parse_multipart(content_type, body)
        allowed = {"purpose", "file", "expires_after[anchor]", "expires_after[seconds]"}
        for name in list(fields) + list(files):
            if name not in allowed:
                raise FakeApiError(
                    400, f"Unrecognized request argument supplied: {name}", param=name
                )
        if "file" not in files:
            raise _missing("file")
        if "purpose" not in fields:
            raise _missing("purpose")
        purpose = fields["purpose"]
        filename, data = files["file"]
        if purpose not in FILE_PURPOSES:
            options = ", ".join(f"'{p}'" for p in FILE_PURPOSES)
            raise FakeApiError(400, f"'{purpose}' is not one of [{options}] - 'purpose'")
        if len(data) > self.max_upload_bytes:
            raise FakeApiError(
                400,
                f"File too large: {len(data)} bytes. The maximum file size is "
                f"{self.max_upload_bytes} bytes.",
                param="file",
            )
        if purpose == "batch":
            if not filename.lower().endswith(".jsonl"):
                raise FakeApiError(400, "Invalid file format for Batch API. Must be .jsonl")
            if len(data) > self.max_batch_file_bytes:
                raise FakeApiError(
                    400,
                    f"File size ({len(data)} bytes) exceeds the maximum allowed for the Batch "
                    f"API ({self.max_batch_file_bytes} bytes).",
                    param="file",
                )
        expires_at = self._expires_at_for_upload(purpose, fields)
        f = self._new_file(data, filename, purpose, None)
        f.expires_at = None if expires_at is None else f.created_at + expires_at
        self.upload_count += 1
        return _json_reply(200, self._file_json(f))

    def _expires_at_for_upload(self, purpose: str, fields: dict[str, str]) -> int | None:
        """Seconds until expiry: from expires_after, else 30 days for batch files, else never."""
        anchor = fields.get("expires_after[anchor]")
        seconds = fields.get("expires_after[seconds]")
        if anchor is None and seconds is None:
            return 30 * DAY if purpose == "batch" else None
        if anchor != "created_at":
            raise _invalid_value("expires_after.anchor", anchor, ["created_at"])
        try:
            value = int(seconds or "")
        except ValueError:
            raise _invalid_type("expires_after.seconds", seconds, "an integer") from None
        if not 3600 <= value <= 30 * DAY:
            raise FakeApiError(
                400,
                f"Invalid 'expires_after.seconds': must be between 3600 and 2592000, got {value}.",
                param="expires_after.seconds",
                code="invalid_value",
            )
        return value

    def _list_files(self, *, query: dict[str, list[str]], **_: Any) -> _Reply:
        limit = _int_param(query, "limit", 10_000, 1, 10_000)
        order = _one(query, "order") or "desc"
        if order not in ("asc", "desc"):
            raise _invalid_value("order", order, ["asc", "desc"])
        purpose = _one(query, "purpose")
        files = [f for f in self.files.values() if not f.gone]
        for f in files:
            if f.expires_at is not None and f.expires_at <= self._now:
                f.expired = True
        files = [f for f in files if not f.gone and (purpose is None or f.purpose == purpose)]
        files.sort(key=lambda f: (f.created_at, f.seq), reverse=order == "desc")
        page = _page(files, _one(query, "after"), limit)
        page["data"] = [self._file_json(f) for f in page["data"]]
        return _json_reply(200, page)

    def _get_file(self, *, file_id: str, **_: Any) -> _Reply:
        return _json_reply(200, self._file_json(self._live_file(file_id)))

    def _delete_file(self, *, file_id: str, **_: Any) -> _Reply:
        f = self._live_file(file_id)
        f.deleted = True
        return _json_reply(200, {"id": f.id, "object": "file", "deleted": True})

    def _file_content(self, *, file_id: str, **_: Any) -> _Reply:
        f = self._live_file(file_id)
        if f.purpose == "assistants":
            raise FakeApiError(400, "Not allowed to download files of purpose: assistants")
        truncate = False
        if self._broken_downloads.get(file_id, 0) > 0:
            self._broken_downloads[file_id] -= 1
            truncate = True
        return _Reply(200, f.data, content_type="application/octet-stream", truncate=truncate)

    # ---------------------------------------------------------------- batches endpoints

    def _batch_json(self, batch: FakeBatch) -> dict:
        payload = batch.to_api(absent_file_id="" if self.azure else None)
        if "batch_id" in self.hostile_ids:
            payload["id"] = self.hostile_ids["batch_id"]
        for name in ("input_file_id", "output_file_id", "error_file_id"):
            if payload.get(name) and name in self.hostile_ids:
                payload[name] = self.hostile_ids[name]
        return payload

    def _file_json(self, f: FakeFile) -> dict:
        payload = f.to_api()
        if "file_id" in self.hostile_ids:
            payload["id"] = self.hostile_ids["file_id"]
        return payload

    def _live_batch(self, batch_id: str) -> FakeBatch:
        batch = self.batches.get(batch_id)
        if batch is None:
            raise FakeApiError(404, f"No batch found with id '{batch_id}'.")
        return batch

    def _create_batch(self, *, body: bytes, **_: Any) -> _Reply:
        params = _json_object(body)
        for name in params:
            if name not in BATCH_CREATE_PARAMS:
                raise FakeApiError(
                    400,
                    f"Unrecognized request argument supplied: {name}",
                    param=name,
                    code="unknown_parameter",
                )
        for name in ("input_file_id", "endpoint", "completion_window"):
            if params.get(name) is None:
                raise _missing(name)
            if not isinstance(params[name], str):
                raise _invalid_type(name, params[name], "a string")
        endpoint = params["endpoint"]
        allowed = BATCH_ENDPOINTS
        if self.azure:
            allowed = (*BATCH_ENDPOINTS, *(e.removeprefix("/v1") for e in BATCH_ENDPOINTS))
        if endpoint not in allowed:
            raise _invalid_value("endpoint", endpoint, allowed)
        window = params["completion_window"]
        if window not in self.completion_windows:
            raise _invalid_value("completion_window", window, list(self.completion_windows))
        metadata = _check_metadata(params.get("metadata"))
        output_expires = _check_output_expires_after(params.get("output_expires_after"))
        input_file = self._live_file(params["input_file_id"], param="input_file_id")
        if input_file.purpose != "batch":
            raise FakeApiError(
                400,
                f"Invalid 'input_file_id': '{input_file.id}'. The file was uploaded with "
                f"purpose '{input_file.purpose}', but the Batch API requires purpose 'batch'.",
                param="input_file_id",
            )
        plan = self._plans.pop(0) if self._plans else self.default_plan
        created = self._tick(1)
        batch = FakeBatch(
            id="batch_" + self._hex(32),
            endpoint=endpoint,
            input_file_id=input_file.id,
            completion_window=window,
            metadata=metadata,
            created_at=created,
            expires_at=created + self.completion_windows[window],
            plan=plan,
            seq=self._next_seq(),
            output_expires_seconds=output_expires,
            prompt_tokens_estimate=_file_tokens(input_file.data),
        )
        self.batches[batch.id] = batch
        self.batch_create_count += 1
        self._update_metrics()
        return _json_reply(200, self._batch_json(batch))

    def _list_batches(self, *, query: dict[str, list[str]], **_: Any) -> _Reply:
        limit = _int_param(query, "limit", 20, 1, 100)
        batches = sorted(self.batches.values(), key=lambda b: (b.created_at, b.seq), reverse=True)
        page = _page(batches, _one(query, "after"), limit)
        if self.advance_on_list and self.auto_advance:
            for batch in page["data"]:
                if not batch.done:
                    self._tick(self.step_seconds)
                    self._step(batch)
        page["data"] = [self._batch_json(b) for b in page["data"]]
        return _json_reply(200, page)

    def _get_batch(self, *, batch_id: str, **_: Any) -> _Reply:
        batch = self._live_batch(batch_id)
        if self.auto_advance and not batch.done:
            self._tick(self.step_seconds)
            self._step(batch)
        batch.seen.append({"status": batch.status, **batch.counts()})
        return _json_reply(200, self._batch_json(batch))

    def _cancel_batch(self, *, batch_id: str, **_: Any) -> _Reply:
        batch = self._live_batch(batch_id)
        if batch.done:
            raise FakeApiError(
                400, f"Cannot cancel a batch with status '{batch.status}'.", param="batch_id"
            )
        if batch.status != "cancelling":
            batch.status = "cancelling"
            batch.cancelling_at = self._tick(1)
        return _json_reply(200, self._batch_json(batch))

    # ---------------------------------------------------------------- sync endpoints

    def _sync(self, *, endpoint: str, body: bytes, **_: Any) -> _Reply:
        params = _json_object(body)
        url = f"/v1/{endpoint}"
        required = {
            "chat/completions": ("model", "messages"),
            "embeddings": ("model", "input"),
            "responses": ("model",),
            "completions": ("model", "prompt"),
            "moderations": ("input",),
        }[endpoint]
        for name in required:
            if name not in params:
                raise _missing(name)
        if params.get("stream"):
            raise FakeApiError(
                400, "fake_openai does not stream; send stream=false", param="stream"
            )
        limit_headers: dict[str, str] = {}
        if self._bucket is not None:
            refused, limit_headers = self._bucket.take(time.monotonic())
            if refused is not None:
                self.rate_limited_count += 1
                return _json_reply(429, refused, limit_headers)
        line = {"custom_id": None, "method": "POST", "url": url, "body": params}
        status, payload = self.responder(line)
        reply = _json_reply(status, payload, limit_headers)
        reply.delay = self.latency
        return reply


@dataclass
class _TokenBucket:
    """The rate limiter of `FakeOpenAI.rate_limit`: `rate` requests a second, `capacity` deep."""

    rate: float
    capacity: float
    headers: bool
    level: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> tuple[dict | None, dict[str, str]]:
        """(None, headers) when a token was taken; (429 body, headers) when the bucket is empty."""
        if self.level < 0:
            self.level, self.at = self.capacity, now
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        refused = None
        extra: dict[str, str] = {}
        if self.level >= 1:
            self.level -= 1
        else:
            wait_ms = math.ceil((1 - self.level) / self.rate * 1000) if self.rate > 0 else 60_000
            extra["retry-after-ms"] = str(wait_ms)
            limit = int(self.capacity)
            refused = error_body(
                429,
                f"Rate limit reached for requests per min (RPM): Limit {limit}, Used {limit}, "
                f"Requested 1. Please try again in {wait_ms}ms.",
                code="rate_limit_exceeded",
            )
            refused["error"]["type"] = "requests"
        if self.headers:
            reset = (self.capacity - self.level) / self.rate if self.rate > 0 else 60.0
            extra["x-ratelimit-limit-requests"] = str(int(self.capacity))
            extra["x-ratelimit-remaining-requests"] = str(max(0, math.floor(self.level)))
            extra["x-ratelimit-reset-requests"] = f"{max(0, round(reset * 1000))}ms"
        return refused, extra


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("POST", re.compile(r"/v1/files"), "_create_file"),
    ("GET", re.compile(r"/v1/files"), "_list_files"),
    ("GET", re.compile(r"/v1/files/(?P<file_id>[^/]+)"), "_get_file"),
    ("DELETE", re.compile(r"/v1/files/(?P<file_id>[^/]+)"), "_delete_file"),
    ("GET", re.compile(r"/v1/files/(?P<file_id>[^/]+)/content"), "_file_content"),
    ("POST", re.compile(r"/v1/batches"), "_create_batch"),
    ("GET", re.compile(r"/v1/batches"), "_list_batches"),
    ("GET", re.compile(r"/v1/batches/(?P<batch_id>[^/]+)"), "_get_batch"),
    ("POST", re.compile(r"/v1/batches/(?P<batch_id>[^/]+)/cancel"), "_cancel_batch"),
    ("POST", re.compile(r"/v1/(?P<endpoint>" + "|".join(SYNC_ENDPOINTS) + ")"), "_sync"),
]


# --------------------------------------------------------------------------------------------
# Request parsing helpers
# --------------------------------------------------------------------------------------------


def _basic_as_bearer(auth: str) -> str:
    """OpenAI also takes the key as the password of Basic auth (a URL's user:key@host)."""
    if not auth.startswith("Basic "):
        return auth
    try:
        _, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return auth
    return f"Bearer {password}"


def _one(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    raw = _one(query, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid_type(name, raw, "an integer") from None
    if value < low:
        raise FakeApiError(
            400,
            f"Invalid '{name}': integer below minimum value. Expected a value >= {low}, but got "
            f"{value} instead.",
            param=name,
            code="integer_below_min_value",
        )
    if value > high:
        raise FakeApiError(
            400,
            f"Invalid '{name}': integer above maximum value. Expected a value <= {high}, but got "
            f"{value} instead.",
            param=name,
            code="integer_above_max_value",
        )
    return value


def _page(items: list[Any], after: str | None, limit: int) -> dict:
    """A cursor page: the `limit` items after the one with id `after` (data not yet rendered)."""
    if after is not None:
        ids = [item.id for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
        "has_more": len(items) > limit,
    }


def _json_object(body: bytes) -> dict:
    try:
        params = json.loads(body.decode("utf-8") or "null")
    except ValueError:
        raise FakeApiError(400, BAD_JSON_MESSAGE) from None
    if not isinstance(params, dict):
        raise FakeApiError(400, BAD_JSON_MESSAGE)
    return params


def _check_metadata(metadata: Any) -> dict | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise _invalid_type("metadata", metadata, "an object")
    if len(metadata) > 16:
        raise FakeApiError(
            400,
            "Invalid 'metadata': too many properties. Expected an object with at most 16 "
            f"properties, but got an object with {len(metadata)} properties instead.",
            param="metadata",
            code="object_above_max_properties",
        )
    for key, value in metadata.items():
        if len(key) > 64:
            raise FakeApiError(
                400,
                "Invalid 'metadata': string too long. Expected a string with maximum length "
                f"64, but got a string with length {len(key)} instead.",
                param="metadata",
                code="string_above_max_length",
            )
        if not isinstance(value, str):
            raise _invalid_type(f"metadata.{key}", value, "a string")
        if len(value) > 512:
            raise FakeApiError(
                400,
                f"Invalid 'metadata.{key}': string too long. Expected a string with maximum "
                f"length 512, but got a string with length {len(value)} instead.",
                param=f"metadata.{key}",
                code="string_above_max_length",
            )
    return dict(metadata)


def _check_output_expires_after(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _invalid_type("output_expires_after", value, "an object")
    if value.get("anchor") != "created_at":
        raise _invalid_value("output_expires_after.anchor", value.get("anchor"), ["created_at"])
    seconds = value.get("seconds")
    if not isinstance(seconds, int) or not 3600 <= seconds <= 30 * DAY:
        raise FakeApiError(
            400,
            "Invalid 'output_expires_after.seconds': must be an integer between 3600 and 2592000.",
            param="output_expires_after.seconds",
            code="invalid_value",
        )
    return seconds


def _file_tokens(data: bytes) -> int:
    """Estimated prompt tokens of every parseable request line in a batch input file."""
    total = 0
    for raw in data.decode("utf-8", errors="replace").splitlines():
        try:
            line = json.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict):
            total += estimate_tokens(line.get("body"))
    return total


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    """Split a multipart/form-data body into text fields and (filename, bytes) file parts."""
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise FakeApiError(400, "Invalid multipart/form-data body: no boundary.")
    parts: list[tuple[dict[bytes, bytes], bytearray]] = []
    state: dict[str, Any] = {}

    def on_part_begin() -> None:
        state.update(headers={}, data=bytearray(), name=b"", value=b"")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state["name"] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state["value"] += data[start:end]

    def on_header_end() -> None:
        state["headers"][state["name"].lower()] = state["value"]
        state.update(name=b"", value=b"")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        state["data"] += data[start:end]

    def on_part_end() -> None:
        parts.append((state["headers"], state["data"]))

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:
        raise FakeApiError(400, f"Invalid multipart/form-data body: {exc}") from None
    fields: dict[str, str] = {}
    files: dict[str, Any] = {}
    for headers, data in parts:
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode()
        if b"filename" in disposition:
            files[name] = (disposition[b"filename"].decode(), bytes(data))
        else:
            fields[name] = bytes(data).decode("utf-8")
    return fields, files


# --------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-openai/1"
    timeout = 60
    disable_nagle_algorithm = True  # headers and body go out in two writes: avoid a 40 ms stall

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: pytest output is for the tests."""

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        fake: FakeOpenAI = self.server.fake  # type: ignore[attr-defined]
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = fake.handle(self.command, self.path, headers, body)
        if reply.delay > 0:
            time.sleep(reply.delay)
        if reply.disconnect:
            self.close_connection = True
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.truncate:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.truncate:
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(reply.body)
