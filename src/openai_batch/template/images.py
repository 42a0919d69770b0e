"""Image parts: URLs pass through; a local image file becomes a base64 `data:` URL."""

from __future__ import annotations

import base64
import mimetypes
from functools import lru_cache
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError

_PASS_THROUGH = ("http://", "https://", "data:")
# What the vision models accept, by the file's first bytes (the extension can lie).
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_url_shape_problem(value: Any) -> str:
    """Why a chat image part's `image_url` that is not an object is refused (a list, a string)."""
    kind = "a list" if isinstance(value, list) else "a string" if isinstance(value, str) else None
    what = f"is {kind}, which the API rejects; it" if kind else "it"
    return f'{what} must be an object with a url, e.g. {{"url": "https://..."}}'


def image_url_value(value: str, base_dir: Path | None, where: str) -> str:
    """The url to send for an image value: unchanged for URLs, a data: URL for a local file."""
    text = value.strip()
    if text.lower().startswith(_PASS_THROUGH):
        return text
    if not text:
        raise BatchError(f"{where}: the image is empty.", hint="give a URL or an image file path.")
    path = Path(text).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return _data_url(path.resolve())
    except BatchError as exc:
        raise BatchError(f"{where}: {exc.message}", hint=exc.hint_parts) from None


@lru_cache(maxsize=16)  # a template often repeats the same few images on every row
def _data_url(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BatchError(
            f"image file not found: {path}",
            hint="image paths are taken relative to the data file's folder; "
            "or give an http(s):// or data: URL.",
        ) from None
    except OSError as exc:
        raise BatchError(f"cannot read image file {path}: {exc.strerror}.") from None
    mime = _mime_type(data, path)
    if mime is None:
        raise BatchError(
            f"{path} is not a PNG, JPEG, GIF or WebP image.",
            hint="the API accepts png, jpeg, gif and webp images.",
        )
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _mime_type(data: bytes, path: Path) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed if guessed in ("image/png", "image/jpeg", "image/gif", "image/webp") else None
