"""Tables that fit the terminal: key columns stay whole, long columns wrap, optional columns give way.

Rich squeezes every column of a table that is wider than the terminal, cutting the very text a user must type
(``BiLevelRo…``). Here each column says what it may do instead: a *key* column (a module name, a number, an index)
is never wrapped or cut; any other column wraps at spaces, or is cut with "…" where its full text is shown
elsewhere; a column with a ``drop`` rank is left out, highest rank first, while the table would be wider than the
terminal with its wrapping columns on one line (the caller says where to read what was left out).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Two spaces between columns, a rule under the header, no frame: the most room for content at 80 columns.
TABLE_STYLE: dict[str, Any] = {
    "box": "SIMPLE_HEAD",
    "show_edge": False,
    "pad_edge": False,
    "collapse_padding": True,
    "title_justify": "left",
}
# Wide enough that every column measures at its natural minimum (the longest word, or the whole cell of a key column).
_UNBOUNDED = 100_000


@dataclass(frozen=True)
class Col:
    """One column of a fitted table."""

    header: str
    justify: Literal["left", "right"] = "left"
    key: bool = False  # never wrapped or cut: names a user types, numbers, indices
    cut: bool = False  # one line, cut with "…" where short (text shown in full elsewhere); default: wrap at spaces
    drop: int = 0  # 0: always shown; otherwise left out on a narrow terminal, the highest rank first


@dataclass(frozen=True)
class Row:
    cells: Sequence[str]  # Rich markup, already escaped
    style: str | None = None
    new_section: bool = False  # a rule above this row (the backbone/head boundary of `show`)


def _build(
    columns: Sequence[Col],
    rows: Sequence[Row],
    keep: Sequence[int],
    table_options: dict[str, Any],
    widths: dict[int, int] | None = None,
) -> Any:
    from rich.table import Table

    table = Table(**table_options)
    for i in keep:
        col = columns[i]
        width = (widths or {}).get(i)
        if col.key:
            table.add_column(col.header, justify=col.justify, no_wrap=True, min_width=_widest(columns, rows, i))
        elif col.cut:
            table.add_column(col.header, justify=col.justify, no_wrap=True, overflow="ellipsis", max_width=width)
        else:
            table.add_column(col.header, justify=col.justify, overflow="fold", max_width=width)
    for row in rows:
        if row.new_section and table.row_count:
            table.add_section()
        table.add_row(*(row.cells[i] for i in keep), style=row.style)
    return table


def _texts(columns: Sequence[Col], rows: Sequence[Row], index: int) -> list[str]:
    from rich.text import Text

    return [Text.from_markup(t).plain for t in (columns[index].header, *(r.cells[index] for r in rows))]


def _widest(columns: Sequence[Col], rows: Sequence[Row], index: int) -> int:
    from rich.cells import cell_len

    return max(cell_len(line) for text in _texts(columns, rows, index) for line in text.split("\n"))


def _longest_word(columns: Sequence[Col], rows: Sequence[Row], index: int) -> int:
    from rich.cells import cell_len

    return max(cell_len(word) for text in _texts(columns, rows, index) for word in text.split() or [""])


def _share(spare: int, room: dict[int, int]) -> dict[int, int]:
    """Spread ``spare`` cells over columns evenly, none taking more than its ``room``."""
    given = dict.fromkeys(room, 0)
    open_ = [i for i in room if room[i] > 0]
    while spare > 0 and open_:
        each = max(spare // len(open_), 1)
        for i in list(open_):
            step = min(each, room[i] - given[i], spare)
            given[i] += step
            spare -= step
            if given[i] == room[i]:
                open_.remove(i)
            if spare == 0:
                break
    return given


def _measure(console: Any, table: Any) -> Any:
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update_width(_UNBOUNDED), table)


def fit_table(console: Any, columns: Sequence[Col], rows: Sequence[Row], **table_options: Any) -> tuple[Any, list[str]]:
    """A Rich table for ``console``'s width, and the headers of the columns left out to make it fit.

    Optional columns are left out, highest rank first, while the table is wider than the terminal with every
    wrapping column on one line and every cut column at its longest word; what is kept then shares the width.
    """
    from rich import box

    options = {**TABLE_STYLE, **table_options}
    if isinstance(options["box"], str):
        options["box"] = getattr(box, options["box"])
    keep = list(range(len(columns)))
    cut_short = {i: _longest_word(columns, rows, i) for i, c in enumerate(columns) if c.cut}
    droppable = sorted((i for i, c in enumerate(columns) if c.drop), key=lambda i: -columns[i].drop)
    while droppable and _measure(console, _build(columns, rows, keep, options, cut_short)).maximum > console.width:
        rank = columns[droppable[0]].drop
        while droppable and columns[droppable[0]].drop == rank:  # columns of one rank go together
            keep.remove(droppable.pop(0))
    # Rich narrows an over-wide table by cutting through words ("[input" / "]"); instead each wrapping column is
    # given its narrowest (longest word; a cut column one cell) plus an even share of the room left, so Rich never
    # has to narrow anything.
    flexible = [i for i in keep if not columns[i].key]
    shortest = {i: 1 if columns[i].cut else _longest_word(columns, rows, i) for i in flexible}
    spare = max(console.width - _measure(console, _build(columns, rows, keep, options, shortest)).maximum, 0)
    extra = _share(spare, {i: _widest(columns, rows, i) - shortest[i] for i in flexible})
    table = _build(columns, rows, keep, options, {i: shortest[i] + extra[i] for i in flexible})
    return table, [c.header for i, c in enumerate(columns) if i not in keep]


def left_out_note(console: Any, headers: Sequence[str], where: str) -> str:
    """The line under a table that says which columns the width left out and where to read them."""
    return f"not shown at {console.width} columns: {', '.join(headers)} ({where})"
