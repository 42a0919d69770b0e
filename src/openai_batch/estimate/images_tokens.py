"""What an image costs in prompt tokens, by model family, and how big an image is.

Two metering schemes exist (OpenAI vision guide, "Calculating costs"):
- tiles: fit in 2048x2048, shrink so the shortest side is at most 768, then base + tile tokens
  per 512-px square at high/auto detail, base tokens alone at low detail;
- patches (gpt-4.1-mini/nano, o4-mini, gpt-5-mini/nano): 32-px patches, at most 1,536 (the image
  is shrunk to fit), times a per-model multiplier; detail does not change the count.
Remote images cannot be measured offline: the caller gives a size or we assume the largest cost.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TILE_PX = 512
PATCH_PX = 32
MAX_PATCHES = 1536


@dataclass(frozen=True)
class ImageRule:
    """How one model family meters images."""

    family: str
    scheme: str  # "tiles" or "patches"
    base: int = 0  # tiles: tokens always charged; the whole cost at low detail
    per_tile: int = 0  # tiles: tokens per 512-px square at high detail
    multiplier: float = 1.0  # patches: tokens per 32-px patch


_TILE_4O = ImageRule("gpt-4o", "tiles", 85, 170)
# Model-name prefixes -> rule, most specific first (names are lower-cased; "ft:" stripped).
_RULES: tuple[tuple[str, ImageRule], ...] = (
    ("gpt-4o-mini", ImageRule("gpt-4o-mini", "tiles", 2833, 5667)),
    ("gpt-4.1-mini", ImageRule("gpt-4.1-mini", "patches", multiplier=1.62)),
    ("gpt-4.1-nano", ImageRule("gpt-4.1-nano", "patches", multiplier=2.46)),
    ("gpt-5-mini", ImageRule("gpt-5-mini", "patches", multiplier=1.62)),
    ("gpt-5-nano", ImageRule("gpt-5-nano", "patches", multiplier=2.46)),
    ("o4-mini", ImageRule("o4-mini", "patches", multiplier=1.72)),
    ("gpt-5", ImageRule("gpt-5", "tiles", 70, 140)),
    ("o1", ImageRule("o1/o3", "tiles", 75, 150)),
    ("o3", ImageRule("o1/o3", "tiles", 75, 150)),
    ("computer-use-preview", ImageRule("computer-use-preview", "tiles", 65, 129)),
    ("gpt-4o", _TILE_4O),
    ("chatgpt-4o", _TILE_4O),
    ("gpt-4.1", _TILE_4O),
    ("gpt-4.5", _TILE_4O),
    ("gpt-4-turbo", _TILE_4O),
    ("gpt-4-vision", _TILE_4O),
)


def rule_for_model(model: str | None) -> tuple[ImageRule, bool]:
    """(rule, known): the gpt-4o rule stands in for models we do not recognise."""
    name = (model or "").strip().lower()
    if name.startswith("ft:"):
        name = name[3:].split(":", 1)[0]
    for prefix, rule in _RULES:
        if name.startswith(prefix):
            return rule, True
    return _TILE_4O, False


def _tiles(width: float, height: float) -> int:
    """512-px squares after the high-detail resize (only ever shrinks, never enlarges)."""
    if max(width, height) > 2048:
        scale = 2048 / max(width, height)
        width, height = width * scale, height * scale
    if min(width, height) > 768:
        scale = 768 / min(width, height)
        width, height = width * scale, height * scale
    return _cover(width, TILE_PX) * _cover(height, TILE_PX)


def _cover(length: float, step: int) -> int:
    """Squares of `step` px needed to cover `length` (tolerant of float noise from scaling)."""
    return max(1, math.ceil(length / step - 1e-9))


def _patches(width: float, height: float) -> int:
    raw = _cover(width, PATCH_PX) * _cover(height, PATCH_PX)
    if raw <= MAX_PATCHES:
        return raw
    ratio = math.sqrt(PATCH_PX * PATCH_PX * MAX_PATCHES / (width * height))
    ratio *= min(
        math.floor(width * ratio / PATCH_PX) / (width * ratio / PATCH_PX),
        math.floor(height * ratio / PATCH_PX) / (height * ratio / PATCH_PX),
    )
    return min(MAX_PATCHES, _cover(width * ratio, PATCH_PX) * _cover(height * ratio, PATCH_PX))


def image_tokens(rule: ImageRule, width: int, height: int, detail: str | None = "auto") -> int:
    """Prompt tokens for one image of width x height; `auto` is counted as `high`."""
    if width <= 0 or height <= 0:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if rule.scheme == "patches":
        return math.ceil(_patches(width, height) * rule.multiplier - 1e-9)
    if (detail or "auto") == "low":
        return rule.base
    return rule.base + rule.per_tile * _tiles(width, height)


def max_image_tokens(rule: ImageRule, detail: str | None = "auto") -> int:
    """The most one image can cost: what we assume for an image we cannot measure."""
    if rule.scheme == "patches":
        return math.ceil(MAX_PATCHES * rule.multiplier - 1e-9)
    if (detail or "auto") == "low":
        return rule.base
    return rule.base + rule.per_tile * 8  # 2048x768 after resizing: 4 x 2 tiles


def parse_size(text: str) -> tuple[int, int]:
    """`WxH` (e.g. 2048x683) -> (width, height); raises ValueError on anything else."""
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2:
        raise ValueError(text)
    width, height = int(parts[0].strip()), int(parts[1].strip())
    if width <= 0 or height <= 0:
        raise ValueError(text)
    return width, height


@lru_cache(maxsize=256)  # the same data: URL or file often appears on every line
def measure(url: str, base_dir: str | None = None) -> tuple[int, int] | None:
    """(width, height) of a data: URL, file:// URL or local path; None for remote or unreadable."""
    from PIL import Image, UnidentifiedImageError

    try:
        if url.startswith("data:"):
            _, _, payload = url.partition(",")
            source: io.BytesIO | Path = io.BytesIO(base64.b64decode(payload, validate=False))
        elif url.startswith(("http://", "https://")):
            return None
        else:
            path = Path(url.removeprefix("file://")).expanduser()
            if not path.is_absolute() and base_dir:
                path = Path(base_dir) / path
            source = path
        with Image.open(source) as img:  # reads the header only
            return img.size
    except (OSError, ValueError, binascii.Error, UnidentifiedImageError):
        return None
