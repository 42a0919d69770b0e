"""The commands the tool suggests are spelled one way (ui/hints): quoted as a shell needs them,
so a file name with a space can be pasted back as it is shown."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import run_cli


def _requests(path: Path, *, model: str | None) -> Path:
    body: dict[str, object] = {"messages": [{"role": "user", "content": "hi"}]}
    if model:
        body["model"] = model
    line = {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions", "body": body}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


def test_a_rejected_file_with_a_space_is_named_so_it_can_be_pasted(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _requests(tmp_path / "my requests.jsonl", model=None)  # no model: rejected
    code, _out, err = run_cli(capsys, "start-batch", path.name)
    assert code == 1 and "would be rejected" in err
    validate = shlex.join(["openai-batch", "utils", "validate", path.name])
    assert f"`{validate}`" in err
    assert fake_api.batch_create_count == 0


def test_a_file_never_started_points_at_start_batch_quoted(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _requests(tmp_path / "my requests.jsonl", model="gpt-4o-mini")
    code, _out, err = run_cli(capsys, "get-batch-results", path.name)
    assert code == 1 and "no batch was started from" in err
    assert "`openai-batch start-batch 'my requests.jsonl'`" in err


def test_make_batch_file_names_its_files_quoted_when_some_requests_may_be_rejected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    """The second row's role is not one the API takes: the warning's validate command names
    the output with its space quoted (it was pasted in as `validate my out.jsonl`)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("r,n\nuser,a\nbot,b\n", encoding="utf-8")
    template = '{"model": "gpt-4o-mini", "messages": [{"role": "<<r>>", "content": "<<n>>"}]}'
    (tmp_path / "t.json").write_text(template, encoding="utf-8")
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "my out.jsonl")
    assert code == 0 and "the API may reject some requests" in err
    validate = err.split("`")[-2]
    assert shlex.split(validate) == ["openai-batch", "utils", "validate", "my out.jsonl"]


def test_a_damaged_ledger_in_a_folder_with_a_space_gets_a_mv_that_pastes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    home = tmp_path / "my home"
    home.mkdir()
    ledger = home / "ledger.sqlite3"
    ledger.write_bytes(b"not a database, " * 512)
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(home))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-never-used-0000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    code, _out, err = run_cli(capsys, "get-batch-results", "--job", "x")
    assert code == 1 and f"the ledger {ledger} is damaged" in err
    move, check = err.split("`")[1::2]
    assert shlex.split(move) == ["mv", str(ledger), f"{ledger}.damaged"]
    assert check == "openai-batch list-batches"


def test_a_hint_names_its_commands_as_data_and_spells_them_quoted() -> None:
    """Library code puts `Command`s in a hint; a program reads them from `commands`, a person
    from the hint, where each is spelled as ui/hints spells every suggestion."""
    from openai_batch.errors import BatchError, Command
    from openai_batch.ui.hints import command

    get = Command("get-batch-results", Path("my requests.jsonl"), "--wait")
    error = BatchError("not done", hint=("run `", get, "` later"))
    assert error.commands == (get,)
    assert get.args == ("get-batch-results", "my requests.jsonl", "--wait")
    assert error.hint == f"run `{command(get.args)}` later"
    assert str(error) == (
        "not done\n  hint: run `openai-batch get-batch-results 'my requests.jsonl' --wait` later"
    )
    assert BatchError("plain", hint="text").commands == ()
    assert BatchError("none").hint is None and str(BatchError("none")) == "none"


def test_an_output_name_with_a_space_is_suggested_quoted(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    """ "use -o NAME.jsonl" after a name not ending in .jsonl, from make-batch-file and
    retry-failed: the suggested option pastes back whole (it read `use -o my out.jsonl`)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # offline: never reached
    (tmp_path / "d.csv").write_text("n\na\n", encoding="utf-8")
    template = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<n>>"}]}'
    (tmp_path / "t.json").write_text(template, encoding="utf-8")
    code, _out, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "my out.txt")
    assert code == 1 and err.endswith("hint: use -o 'my out.jsonl'\n")

    _requests(tmp_path / "req.jsonl", model="gpt-4o-mini")
    failed = {"error": {"message": "boom", "type": "server_error"}}
    result = {
        "id": "r0",
        "custom_id": "id_0",
        "response": {"status_code": 500, "request_id": "q", "body": failed},
        "error": None,
    }
    (tmp_path / "res.jsonl").write_text(json.dumps(result) + "\n", encoding="utf-8")
    args = ("utils", "retry-failed", "res.jsonl", "--requests", "req.jsonl", "-o", "my retry.txt")
    code, _out, err = run_cli(capsys, *args)
    assert code == 1 and err.endswith("hint: use -o 'my retry.jsonl'\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "d.csv",
        "req.jsonl",
        "res.jsonl",
        "t.json",
    ]


def test_hints_that_name_commands_as_data_read_as_before(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    """The hints whose commands became `errors.Command` data read word for word as when they
    were written by hand (ledger/jobstore, requestfile/kinds and scan, service/batch_calls)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("n\na\n", encoding="utf-8")
    (tmp_path / "t.json").write_text('{"model": "m", "messages": []}', encoding="utf-8")
    bad = _requests(tmp_path / "my requests.jsonl", model=None)
    unknown = "batch_" + "0" * 32
    expected = {
        ("get-batch-results", "--job", "nope"): "start one with `openai-batch run TEMPLATE DATA` "
        "or `openai-batch start-batch FILE... --job NAME`",
        ("start-batch", "d.csv"): "make request files from it first: "
        "openai-batch make-batch-file TEMPLATE.json d.csv",
        ("start-batch", "t.json"): "make request files from it first: "
        "openai-batch make-batch-file t.json DATA.csv",
        ("start-batch", bad.name): "fix it (or make it again); "
        "`openai-batch utils validate 'my requests.jsonl'` lists every problem; "
        "--no-check skips this check",
        ("get-batch-results", unknown): "check the id with `openai-batch list-batches`; "
        "batch ids belong to one organization and project",
    }
    for args, hint in expected.items():
        code, _out, err = run_cli(capsys, *args)
        assert code != 0 and err.endswith(f"\n  hint: {hint}\n"), (args, err)


def test_retry_failed_and_resolve_name_their_commands_as_data(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    """results/retry and flow/resolve spelled their suggestions with ui/hints' text builders,
    so a program reading `BatchError.commands` found none there; a person reads the same words."""
    import openai

    from openai_batch.errors import BatchError, Command
    from openai_batch.flow import resolve
    from openai_batch.ledger.store import open_ledger
    from openai_batch.results import retry
    from openai_batch.service.connection import connect

    monkeypatch.chdir(tmp_path)
    (tmp_path / "d.csv").write_text("n\na\n", encoding="utf-8")
    template = '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<n>>"}]}'
    (tmp_path / "t.json").write_text(template, encoding="utf-8")
    assert run_cli(capsys, "make-batch-file", "t.json", "d.csv", "-o", "my req.jsonl")[0] == 0
    made = tmp_path / "my req.jsonl"
    client = openai.OpenAI()  # a batch the ledger never heard of
    uploaded = client.files.create(file=made.open("rb"), purpose="batch")
    unknown = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    ).id
    naming = ("--requests", "batch-requests.jsonl", "-o", "retry.jsonl")
    with open_ledger() as ledger:
        conn = connect()
        root = ledger.request_file(path=made)
        assert root is not None
        cases = [
            (
                lambda: retry.from_results_files(ledger, [Path("my res.jsonl")], None),
                Command("utils", "retry-failed", "my res.jsonl", *naming),
                "name it: openai-batch utils retry-failed 'my res.jsonl' --requests "
                "batch-requests.jsonl -o retry.jsonl (or give the batch id instead)",
            ),
            (
                lambda: retry.from_batches(conn, ledger, unknown, None),
                Command("utils", "retry-failed", unknown, *naming),
                f"name it: openai-batch utils retry-failed {unknown} --requests "
                "batch-requests.jsonl -o retry.jsonl",
            ),
            (
                lambda: retry.from_batches(conn, ledger, "my req.jsonl", made),
                Command("utils", "retry-failed", "my req.jsonl", "-o", "retry.jsonl"),
                "openai-batch utils retry-failed 'my req.jsonl' -o retry.jsonl",
            ),
            (
                lambda: retry.from_batches(conn, ledger, "my req.jsonl", None),
                Command("start-batch", root.path),
                f"start one first: {shlex.join(['openai-batch', 'start-batch', root.path])}",
            ),
            (
                lambda: resolve.resolve(conn, ledger, ["my req.jsonl"]),
                Command("start-batch", "my req.jsonl"),
                "start one with `openai-batch start-batch 'my req.jsonl'`",
            ),
        ]
        for call, command, hint in cases:
            with pytest.raises(BatchError) as caught:
                call()
            assert (caught.value.commands, caught.value.hint) == ((command,), hint)
