"""What a person can tell the estimate: one typed value for the CLI, make-batch-file's review
(which pickles it to its child process) and the jobs' token figures.
"""

from __future__ import annotations

from dataclasses import dataclass

from openai_batch.errors import BatchError
from openai_batch.estimate import images_tokens


@dataclass(frozen=True)
class EstimateOptions:
    """The estimate's options; every field None means "not given" (the bundled defaults)."""

    model_hint: str | None = None
    """Model assumed for requests whose body names none."""
    image_size: str | tuple[int, int] | None = None
    """Size of remote images (WxH), which are never downloaded."""
    expected_output: int | None = None
    """Output tokens expected per request, for a realistic cost next to the ceiling."""
    sample: int | None = None
    """Tokenize a uniform random sample of this many requests and scale up."""
    price_input: float | None = None
    """Input price in USD per 1M tokens (default: the bundled batch price)."""
    price_output: float | None = None
    """Output price in USD per 1M tokens (default: the bundled batch price)."""

    def checked(self) -> EstimateOptions:
        """These options, refused with a readable error where they make no sense."""
        if self.sample is not None and self.sample < 1:
            raise BatchError("--sample must be at least 1.")
        if self.expected_output is not None and self.expected_output < 0:
            raise BatchError("--expected-output cannot be negative.")
        return self

    def image_dimensions(self) -> tuple[int, int] | None:
        """`image_size` as (width, height)."""
        return parse_image_size(self.image_size)


def parse_image_size(image_size: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None or isinstance(image_size, tuple):
        return image_size
    try:
        return images_tokens.parse_size(image_size)
    except ValueError:
        raise BatchError(
            f"cannot read image size {image_size!r}.",
            hint="write it as WIDTHxHEIGHT, e.g. 2048x683.",
        ) from None
