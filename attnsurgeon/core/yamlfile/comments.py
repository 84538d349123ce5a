"""Index comments: a row's trailing comment that names the row's index (``# 9``, ``# 7-P5/32``, ``# 16 (P3/8-small)``,
``# 10 CBAM (attnsurgeon)``), the one rule every editor and the diagnosis read. No torch, no printing.

Two questions, one pattern. A surgery renumbers a comment that *begins* with the row's old index (the design's rule:
``# 2 heads`` on row 2 becomes ``# 3 heads`` when the row moves to 3), since only the row's own number is rewritten.
The diagnosis and ``adopt`` ask whether a comment *is* an index comment at all, whatever number it names: the number
alone, or followed by a label (``-``, ``:``, ``(``) or by attnsurgeon's own mark; ``# 5 pooling kernel`` names no
layer, so it is never reported as stale.
"""

from __future__ import annotations

import re

OWN_COMMENT = "(attnsurgeon)"  # marks the comment of a row attnsurgeon wrote: "# 10 CBAM (attnsurgeon)"
INDEX_COMMENT_RE = re.compile(r"^(#\s*)(\d+)(?!\d)")  # "#", spaces, the number (all its digits)


def leading_index(comment: str) -> int | None:
    """The number a comment begins with (``# 2 heads`` -> 2), else None: what a surgery renumbers."""
    match = INDEX_COMMENT_RE.match(comment)
    return int(match.group(2)) if match else None


def index_of(comment: str) -> int | None:
    """The index an index comment names (``# 16 (P3/8-small)``, ``# 4: CBAM``, ``# 9 SE (attnsurgeon)`` -> the
    number), else None (``# 2 heads``, ``# 1024 channels``): what the diagnosis compares with the row's index."""
    match = INDEX_COMMENT_RE.match(comment)
    if not match:
        return None
    rest = comment[match.end() :].strip()
    if rest and rest[0] not in "-:(" and not rest.endswith(OWN_COMMENT):
        return None
    return int(match.group(2))


def renumbered(comment: str, old: int, new: int) -> str:
    """``comment`` with ``new`` in place of the index ``old`` it begins with; any other comment as it is."""
    match = INDEX_COMMENT_RE.match(comment)
    if match is None or int(match.group(2)) != old or old == new:
        return comment
    return f"{match.group(1)}{new}{comment[match.end() :]}"
