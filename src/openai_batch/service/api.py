"""The service layer in one import: connect, then the Files and Batches calls.

The code lives in the modules named below, one idea each; this module only gathers the names
the rest of the project uses, so a caller writes `api.connect()`, `api.retrieve_batch(...)`.
Every call goes through the official `openai` SDK, which retries 429, 5xx and connection errors
with backoff and honours `retry-after`/`retry-after-ms`; whatever still fails comes out as an
`ApiError` with one clear message and a hint (failures.py); the API key never appears in either.

- connection.py: the client for OpenAI, Azure OpenAI or any base URL; keys, `.env`, retries
- failures.py: SDK and transport errors as ApiError; refusing services without OpenAI's batches
- file_calls.py: upload, look up, delete, read and download files
- batch_calls.py: create, retrieve, find, cancel and list batches; their normal shape
- strict.py: OPENAI_BATCH_STRICT's report of departures from OpenAI's schema (as notices)
"""

from __future__ import annotations

from openai_batch.service.batch_calls import (
    UnrecognisedBatch,
    cancel_batch,
    create_batch,
    find_batch,
    is_final,
    iter_batches,
    normalize,
    retrieve_batch,
)
from openai_batch.service.connection import (
    Connection,
    check_base_url,
    client_setup_error,
    connect,
    load_dotenv_file,
    service_of,
)
from openai_batch.service.failures import (
    TokenLimitRefused,
    translate,
)
from openai_batch.service.file_calls import (
    delete_file,
    download_file,
    read_first_line,
    retrieve_file,
    upload_file,
)

__all__ = [
    "Connection",
    "TokenLimitRefused",
    "UnrecognisedBatch",
    "cancel_batch",
    "check_base_url",
    "client_setup_error",
    "connect",
    "create_batch",
    "delete_file",
    "download_file",
    "find_batch",
    "is_final",
    "iter_batches",
    "load_dotenv_file",
    "normalize",
    "read_first_line",
    "retrieve_batch",
    "retrieve_file",
    "service_of",
    "translate",
    "upload_file",
]
