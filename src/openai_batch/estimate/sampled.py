"""A request file's prompt tokens from a uniform sample of its lines: the figure a job's
enqueued-token quota counts, recorded once per shard in the ledger when the shard joins a job.

Sampling keeps this to a moment even for a 200 MB file; the sample is uniform
(`review.sample_lines`), so the scaled figure is unbiased.
"""

from __future__ import annotations

from pathlib import Path

from openai_batch.estimate.cost import estimate_lines
from openai_batch.requestfile.review import sample_lines

TOKEN_SAMPLE = 1_000  # lines tokenized per request file


def prompt_tokens(path: Path, requests: int, *, sample: int = TOKEN_SAMPLE) -> int:
    """Estimated prompt tokens of a request file of `requests` lines."""
    lines = sample_lines([(Path(path), requests)], k=sample)
    est = estimate_lines(
        # a line that is not a request (the review names it) has no tokens to count
        (line.request for _, line in lines if line.request is not None),
        scale_to=requests if len(lines) < requests else None,
    )
    return int(est.prompt_tokens)
