"""service/: the layer that talks HTTP returns data and tells notices; it never prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from fake_profiles import groq_like
from openai_batch.service import notices
from openai_batch.service.connection import connect
from openai_batch.service.file_calls import upload_file

Capsys = pytest.CaptureFixture[str]


def _requests(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}
    line = {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions", "body": body}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


def test_strict_reports_are_notices_for_a_listener_not_prints(
    fake_api: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    groq_like().install(fake_api)  # file objects without `status`
    told: list[str] = []
    conn = connect(strict=True)
    with notices.listening(told.append):
        upload_file(conn, _requests(tmp_path))
        upload_file(conn, _requests(tmp_path))  # told once per field and connection
    assert len(told) == 1 and told[0].startswith("strict: ") and "status" in told[0]
    conn = connect(strict=True)
    with pytest.warns(notices.ServiceNotice, match="strict: .*status"):
        upload_file(conn, _requests(tmp_path))  # nobody listens: a Python warning
    assert capsys.readouterr() == ("", "")  # nothing printed
    with notices.listening(told.append):
        upload_file(connect(strict=True), _requests(tmp_path))  # a new connection
    assert len(told) == 2


def test_the_innermost_listener_hears_and_leaving_restores_the_outer() -> None:
    outer: list[str] = []
    inner: list[str] = []
    with notices.listening(outer.append):
        with notices.listening(inner.append):
            notices.tell("a")
        notices.tell("b")
    assert (outer, inner) == (["b"], ["a"])
    with pytest.warns(notices.ServiceNotice, match="nobody"):
        notices.tell("nobody")


SRC = Path(__file__).resolve().parents[1] / "src" / "openai_batch"


def _modules(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.py"))


def test_nothing_in_service_prints_or_reaches_for_the_console() -> None:
    """service/ returns data and tells notices; only commands/ and ui/ print."""
    import ast

    offenders = []
    for path in _modules(SRC / "service"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
                "openai_batch.ui"
            ):
                offenders.append(f"{path.name}: imports {node.module}")
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{path.name}:{node.lineno}: print()")
    assert offenders == []


def test_every_environment_variable_is_read_in_settings() -> None:
    """One settings module: no other module reads os.environ or os.getenv."""
    import ast

    offenders = []
    for path in _modules(SRC):
        if path == SRC / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}: os.{node.attr}")
    assert offenders == []


class _Bar:
    def __init__(self) -> None:
        self.updates = 0
        self.closed = False

    def update(self, n: float | None = 1) -> None:
        self.updates += 1

    def set_postfix(self, ordered_dict: object = None, refresh: bool | None = True) -> None:
        pass

    def clear(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_chat_complete_reports_progress_to_the_caller_and_prints_nothing(
    fake_api: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    """The library hands progress to a bar the caller made; it draws nothing itself."""
    from openai_batch.flow.chat_complete import run_requests

    path = tmp_path / "requests.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}
    lines = [
        {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions", "body": body}
        for i in range(5)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    bars: list[tuple[int, _Bar]] = []

    def make_bar(pending: int) -> _Bar:
        bars.append((pending, _Bar()))
        return bars[-1][1]

    summary = run_requests(path, progress=make_bar, concurrency=2)
    assert summary.succeeded == 5
    ((pending, bar),) = bars
    assert pending == 5 and bar.updates == 5 and bar.closed
    assert capsys.readouterr() == ("", "")


def test_chat_complete_builds_its_client_where_every_command_does(
    fake_api: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The async client gets the connection's settings (key, base URL, organization)."""
    from openai_batch.service import chat_runner, connection

    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    client, conn = connection.connect_async(
        base_url=None, api_key_env=None, timeout=5.0, max_retries=1, retry_rules=chat_runner.paced
    )
    assert conn.client.organization == client.organization == "org-test"
    assert str(client.base_url) == str(conn.client.base_url) and client.max_retries == 1
    assert type(client).__name__ == "PacedAsyncOpenAI"


def _runtime_imports(tree: object) -> list[str]:
    """Modules a file imports when it runs (imports under `if TYPE_CHECKING:` left out)."""
    import ast

    found: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)  # type: ignore[arg-type]
    return found


def test_service_talks_http_and_knows_nothing_of_the_ledger_or_the_flows() -> None:
    """service/ is the HTTP layer: what also needs the ledger or a flow lives in flow/."""
    import ast

    offenders = [
        f"{path.name}: {module}"
        for path in _modules(SRC / "service")
        for module in _runtime_imports(ast.parse(path.read_text(encoding="utf-8")))
        if module.startswith(("openai_batch.ledger", "openai_batch.flow"))
    ]
    assert offenders == []
