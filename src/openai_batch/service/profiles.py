"""Which batch service the tool talks to, and what that service allows: a small, dated table.

The profile is chosen by `--service NAME` (or `OPENAI_BATCH_SERVICE`), else from the connection:
`AZURE_OPENAI_ENDPOINT` means Azure, otherwise the host of `OPENAI_BASE_URL`. A service not in
the table gets OpenAI's rules. make-batch-file's split, utils validate and the check before an
upload read the limits from here (`FileLimits`, the one definition in requestfile_limits), and
start-batch / run read the completion windows and the poll interval.

Each row says where its facts come from and when they were last checked: services change their
limits, so a row is a starting point that `--max-requests` / `--max-bytes` can always lower.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from openai_batch import settings
from openai_batch.errors import BatchError
from openai_batch.requestfile.endpoints import ENDPOINTS, MODERATIONS, RESPONSES
from openai_batch.requestfile.limits import FileLimits
from openai_batch.service.dotenv_guard import load_dotenv_file

DAY_WINDOWS = tuple(f"{d}d" for d in range(1, 8))


@dataclass(frozen=True)
class ServiceProfile:
    """What one batch service allows, as documented on `checked`."""

    name: str  # for --service
    label: str  # for messages
    hosts: tuple[str, ...] = ()  # host suffixes of its base URL
    limits: FileLimits = field(default_factory=FileLimits)
    completion_windows: tuple[str, ...] = ("24h",)
    poll_interval: float = 5.0  # default seconds between status calls
    openai_batches: bool = True  # False: its batch API is not OpenAI's /v1/batches
    console: str = "https://platform.openai.com"
    source: str = ""
    checked: str = ""
    notes: str = ""

    def check_window(self, window: str) -> None:
        """Refuse a completion window the service documents it does not take (before paying)."""
        if self.completion_windows and window not in self.completion_windows:
            raise BatchError(
                f"{self.label} takes a completion window of "
                f"{', '.join(self.completion_windows)}, not {window!r}",
                hint="leave --completion-window out for 24h, or pick --service if this is "
                "another service",
            )


def _limits(service: str, **values: object) -> FileLimits:
    return FileLimits(service=service, **values)  # type: ignore[arg-type]


OPENAI = ServiceProfile(
    "openai",
    "OpenAI",
    hosts=("api.openai.com",),
    limits=_limits("OpenAI"),
    source="platform.openai.com/docs/guides/batch, API reference (Batch)",
    checked="2026-11",
)
PROFILES: tuple[ServiceProfile, ...] = (
    OPENAI,
    ServiceProfile(
        "azure",
        "Azure OpenAI",
        hosts=(".openai.azure.com", ".cognitiveservices.azure.com", ".services.ai.azure.com"),
        limits=_limits("Azure OpenAI", requests=100_000, unversioned_urls=True),
        poll_interval=60.0,  # "wait at least 60 seconds between status calls"
        console="https://portal.azure.com (your Azure OpenAI resource, Keys and Endpoint)",
        source="learn.microsoft.com azure/ai-foundry/openai/how-to/batch, quotas-limits",
        checked="2026-11",
        notes="100,000 requests and 200 MB a file; 500 batch files a resource (output files "
        "count); fail-fast regions refuse a create over the enqueued-token quota",
    ),
    ServiceProfile(
        "groq",
        "Groq",
        hosts=("api.groq.com",),
        limits=_limits("Groq", file_bytes=100_000_000),
        completion_windows=("24h", "48h", "72h", *DAY_WINDOWS),
        console="https://console.groq.com",
        source="console.groq.com/docs/batch",
        checked="2026-11",
        notes="completion window from 24h to 7d; 50,000 requests and 100 MB a file",
    ),
    ServiceProfile(
        "deepinfra",
        "DeepInfra",
        hosts=("api.deepinfra.com",),
        limits=_limits(
            "DeepInfra",
            endpoints=tuple(e for e in ENDPOINTS if e not in (RESPONSES, MODERATIONS)),
        ),
        console="https://deepinfra.com/dash",
        source="deepinfra.com/docs/openai_api (batch)",
        checked="2026-11",
        notes="no /v1/responses or /v1/moderations batches",
    ),
    ServiceProfile(
        "together",
        "Together AI",
        hosts=("api.together.xyz", "api.together.ai"),
        limits=_limits("Together AI"),
        completion_windows=(),
        console="https://api.together.ai",
        source="docs.together.ai/docs/batch-inference",
        checked="2026-11",
        notes="its own batch objects ({'job': ...} on create, capital statuses) are read; "
        "uploads may need its `batch-api` purpose",
    ),
    ServiceProfile(
        "mistral",
        "Mistral",
        hosts=("api.mistral.ai",),
        openai_batches=False,
        console="https://console.mistral.ai",
        source="docs.mistral.ai/capabilities/batch (/v1/batch/jobs)",
        checked="2026-11",
        notes="batch jobs at /v1/batch/jobs, not OpenAI's /v1/batches",
    ),
    ServiceProfile(
        "fireworks",
        "Fireworks AI",
        hosts=("api.fireworks.ai",),
        openai_batches=False,
        console="https://fireworks.ai",
        source="docs.fireworks.ai (batch inference jobs on datasets)",
        checked="2026-11",
        notes="batch jobs run on uploaded datasets, not OpenAI's Files and Batches",
    ),
)
BY_NAME = {p.name: p for p in PROFILES}


def named(name: str) -> ServiceProfile:
    """The profile called `name` (case-insensitive); an unknown name is an error."""
    profile = BY_NAME.get(name.strip().lower())
    if profile is None:
        raise BatchError(
            f"unknown service {name!r}",
            hint="known services: " + ", ".join(BY_NAME) + "; leave --service out to use "
            "OpenAI's rules",
        )
    return profile


def for_url(url: str | None, *, azure: bool = False) -> ServiceProfile:
    """The profile of a base URL (OpenAI's rules when the host is not in the table)."""
    if azure:
        return BY_NAME["azure"]
    try:
        host = (urlsplit(url).hostname or "") if url else "api.openai.com"
    except ValueError:  # "http://[::1": commands that connect say so; offline ones need no host
        return OPENAI
    for profile in PROFILES:
        if any(host == h or (h.startswith(".") and host.endswith(h)) for h in profile.hosts):
            return profile
    return OPENAI


def select(name: str | None = None) -> ServiceProfile:
    """`--service`, else OPENAI_BATCH_SERVICE, else the configured base URL (no network)."""
    load_dotenv_file()
    name = name or settings.text(settings.SERVICE)
    if name:
        return named(name)
    if settings.is_set(settings.AZURE_ENDPOINT):
        return BY_NAME["azure"]
    return for_url(settings.text(settings.BASE_URL))
