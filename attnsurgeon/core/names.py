"""Which known names to suggest for one that was mistyped: close ones only. Pure: no torch, no I/O."""

from __future__ import annotations

from collections.abc import Sequence


def close_names(query: str, keys: Sequence[str]) -> list[str]:
    """Names worth suggesting for an unknown ``query``, closest first; none rather than far-fetched ones.

    A name is close when the query begins it ("halo" -> haloattention), when a name of 3+ letters begins the query
    ("coordattention2" -> coordattention), or when it is a few slips away (one edit per five letters, a swap of two
    neighbours counting one: "cbma" -> cbam). So "halo" no longer suggests eca and bam.
    """
    slips = max(1, len(query) // 5)
    distance = {key: edit_distance(query, key) for key in keys}
    close = [
        key
        for key in keys
        if distance[key] <= slips
        or (len(query) >= 2 and key.startswith(query))
        or (len(key) >= 3 and query.startswith(key))
    ]
    return sorted(close, key=lambda key: distance[key])


def edit_distance(a: str, b: str) -> int:
    """Insertions, deletions, substitutions and swaps of neighbours that turn ``a`` into ``b``."""
    rows = [list(range(len(b) + 1))]
    for i, ca in enumerate(a, 1):
        row = [i]
        for j, cb in enumerate(b, 1):
            row.append(min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (ca != cb)))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]
