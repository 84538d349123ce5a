"""A model file's text as lines: where each row of ``backbone``/``head`` sits, in flow style (the layout of the
YOLOv5, YOLOv7 and YOLOv9 repositories) and block style alike (:func:`layout`), and the text with a surgery's rows
rewritten on their own lines, every other line keeping its bytes (:func:`render`). The policy (when to edit lines,
the check, the fallback) is :mod:`attnsurgeon.core.yamlfile.text_writer`'s, the one caller.

ruamel.yaml cannot write a flow sequence with comments back as it was written (it re-flows the rows and moves every
trailing comment onto its own line), so the surgery is applied to the text: each row is one line,
``prefix [row] between # comment``; a moved row gets its references and index comment rewritten in place, a new row
is a new line in its neighbour's style, a removed row's line goes. No torch, no printing.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from attnsurgeon.core.yamlfile.comments import OWN_COMMENT, renumbered
from attnsurgeon.errors import ModelFileError

SECTIONS = ("backbone", "head")
KEY_RE = re.compile(r"^([A-Za-z_][\w-]*)\s*:(?=\s|$)")
_INT_RE = re.compile(r"-?\d+")


@dataclass
class RowLine:
    """One row on its own line: ``prefix + text + between + comment + end``."""

    line: int  # index into Layout.lines
    prefix: str  # indentation, and the section's opening "[" or "- " where the row has it
    text: str  # "[from, repeats, module, args]"
    between: str  # "," and spaces, or the section's closing "]"
    comment: str  # "# 13" or ""
    end: str  # the line ending ("\n", "\r\n", "")
    fields: list[tuple[int, int]] = field(default_factory=list)  # spans of the 4 fields inside text

    def render(self) -> str:
        return f"{self.prefix}{self.text}{self.between}{self.comment}{self.end}"


@dataclass
class Layout:
    lines: list[str]
    rows: list[RowLine]  # backbone rows then head rows, one per layer
    flow: dict[str, bool]  # section -> written in flow style
    section_of: list[str]
    keys: dict[str, int]  # top-level key -> its line


def _fail(source: str, line: int, what: str) -> ModelFileError:
    return ModelFileError(f"{source}: line {line + 1}: {what}")


def _scan_brackets(s: str, start: int, source: str, line: int) -> tuple[int, list[tuple[int, int]]]:
    """From the "[" at ``start`` in one line: the index after its matching "]" and the spans of its top-level items."""
    depth, i, item_start, items = 0, start, start + 1, []
    while i < len(s):
        c = s[i]
        if c in "'\"":
            close = s.find(c, i + 1)
            while c == "'" and close != -1 and s[close + 1 : close + 2] == "'":
                close = s.find(c, close + 2)
            if close == -1:
                raise _fail(source, line, "a quoted string of a row is not closed on its line")
            i = close
        elif c == "#" and s[i - 1] in " \t":
            break
        elif c in "&*!" and (s[i - 1] in "[, "):
            kind = "a YAML tag" if c == "!" else "a YAML anchor or alias (&name, *name)"
            raise _fail(source, line, f"{kind} in a row; write the values out, a model row holds plain values")
        elif c == "[":
            depth += 1
        elif c == "]":
            depth -= 1
            if depth == 0:
                items.append((item_start, i))
                return i + 1, [(a, b) for a, b in items if s[a:b].strip()]
        elif c == "," and depth == 1:
            items.append((item_start, i))
            item_start = i + 1
        i += 1
    raise _fail(source, line, "a row is not closed on its line; write each [from, repeats, module, args] on one line")


def _strip_span(s: str, a: int, b: int) -> tuple[int, int]:
    while a < b and s[a] in " \t":
        a += 1
    while b > a and s[b - 1] in " \t":
        b -= 1
    return a, b


def _split_end(raw: str) -> tuple[str, str]:
    body = raw.rstrip("\r\n")
    return body, raw[len(body) :]


def _comment_start(s: str, i: int) -> int:
    """Where the comment starts in ``s`` at or after ``i`` (len(s) if none); quotes are not expected there."""
    j = s.find("#", i)
    while j != -1 and j > 0 and s[j - 1] not in " \t,]":
        j = s.find("#", j + 1)
    return len(s) if j == -1 else j


def _row(lines: list[str], n: int, col: int, source: str) -> tuple[RowLine, int]:
    body, end = _split_end(lines[n])
    stop, items = _scan_brackets(body, col, source, n)
    if len(items) != 4:
        raise _fail(source, n, f"a row must be [from, repeats, module, args], got {body[col:stop]}")
    fields = [tuple(x - col for x in _strip_span(body, a, b)) for a, b in items]
    cstart = _comment_start(body, stop)
    row = RowLine(n, body[:col], body[col:stop], body[stop:cstart], body[cstart:], end, fields)  # type: ignore[arg-type]
    return row, stop


def _flow_section(lines: list[str], n: int, col: int, source: str, name: str) -> tuple[list[RowLine], int]:
    """Rows of a flow sequence whose "[" is at line ``n``, column ``col``; and the line of its closing "]"."""
    rows: list[RowLine] = []
    i = col + 1
    while n < len(lines):
        body, _ = _split_end(lines[n])
        if "\t" in body[: len(body) - len(body.lstrip())] or ("\t" in body and not body.lstrip().startswith("#")):
            raise _fail(source, n, f"a tab in the {name} section; YAML indents with spaces, use spaces")
        while i < len(body):
            c = body[i]
            if c in " ,":
                i += 1
            elif c == "#":
                break
            elif c == "[":
                if rows and rows[-1].line == n:
                    raise _fail(source, n, f"two {name} rows on one line; put each row on its own line")
                row, i = _row(lines, n, i, source)
                rows.append(row)
            elif c == "]":
                if rows and rows[-1].line == n:  # the closing bracket after the last row on its line
                    rows[-1].between, rows[-1].comment = _between_comment(body, len(rows[-1].prefix + rows[-1].text))
                return rows, n
            else:
                raise _fail(source, n, f"the {name} section holds {body[i:].split(',')[0]!r}, not a [row]")
        n, i = n + 1, 0
    raise _fail(source, len(lines) - 1, f"the {name} section's '[' is never closed with ']'")


def _between_comment(body: str, start: int) -> tuple[str, str]:
    cstart = _comment_start(body, start)
    return body[start:cstart], body[cstart:]


def _block_section(lines: list[str], n: int, source: str, name: str) -> tuple[list[RowLine], int]:
    rows: list[RowLine] = []
    while n < len(lines):
        body, _ = _split_end(lines[n])
        stripped = body.lstrip()
        if not stripped or stripped.startswith("#"):
            n += 1
            continue
        if body[0] not in " -":
            break
        if "\t" in body:
            raise _fail(source, n, f"a tab in the {name} section; YAML indents with spaces, use spaces")
        col = len(body) - len(stripped)
        if not stripped.startswith("- "):
            raise _fail(
                source, n, f"the {name} section mixes styles here; write every row as '- [...]' or as a flow row"
            )
        col += 2
        while body[col : col + 1] == " ":
            col += 1
        if body[col : col + 1] != "[":
            raise _fail(source, n, f"a {name} row that is not one [from, repeats, module, args] on one line")
        row, _ = _row(lines, n, col, source)
        rows.append(row)
        n += 1
    return rows, n - 1


@functools.lru_cache(maxsize=8)
def layout(text: str, source: str = "<string>", block: bool = False) -> Layout | None:
    """The rows of ``text`` as lines, or None when both sections are block style, unless ``block`` (then those too:
    :mod:`attnsurgeon.core.yamlfile.text_writer` edits every file line by line)."""
    flows = re.search(r"^(?:backbone|head)[ \t]*:(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]*\[", text, re.M)
    if not flows and not block:
        return None  # no section opens with "[": a block-style file
    lines = text.splitlines(keepends=True)
    keys = {}
    for n, raw in enumerate(lines):
        match = KEY_RE.match(raw)
        if match:
            keys[match.group(1)] = n
    rows: list[RowLine] = []
    flow: dict[str, bool] = {}
    section_of: list[str] = []
    for name in SECTIONS:
        if name not in keys:
            return None  # model_doc.load reports the missing section
        n = keys[name]
        body, _ = _split_end(lines[n])
        col = body.index(":") + 1
        while True:
            rest = body[col:].lstrip(" ")
            if rest and rest[0] == "[":
                found, _ = _flow_section(lines, n, len(body) - len(rest), source, name)
                flow[name] = True
                break
            if rest and rest[0] != "#":
                raise _fail(source, n, f"the {name} section is neither a flow [..] nor a block '- ' list")
            n += 1
            if n >= len(lines):
                raise _fail(source, n - 1, f"the {name} section is empty")
            body, _ = _split_end(lines[n])
            col = 0
            if body.lstrip().startswith("-"):
                found, _ = _block_section(lines, n, source, name)
                flow[name] = False
                break
        rows += found
        section_of += [name] * len(found)
    if not any(flow.values()) and not block:
        return None
    return Layout(lines, rows, flow, section_of, keys)


# --------------------------------------------------------------------------------------------------------------------
# Editing


def _set_from(row: RowLine, new_from: int | list[int]) -> None:
    a, b = row.fields[0]
    old = row.text[a:b]
    values = [new_from] if isinstance(new_from, int) else list(new_from)
    tokens = list(_INT_RE.finditer(old))
    if len(tokens) == len(values) and (old.startswith("[") == isinstance(new_from, list)):
        out, last = [], 0
        for tok, value in zip(tokens, values, strict=True):
            out += [old[last : tok.start()], str(value)]
            last = tok.end()
        new = "".join(out) + old[last:]
    else:
        new = str(new_from) if isinstance(new_from, int) else "[" + ", ".join(map(str, values)) + "]"
    _set_field(row, 0, new)


def _set_field(row: RowLine, k: int, new: str) -> None:
    a, b = row.fields[k]
    row.text = row.text[:a] + new + row.text[b:]
    delta = len(new) - (b - a)
    row.fields = [
        (x, y) if j < k else ((x, y + delta) if j == k else (x + delta, y + delta))
        for j, (x, y) in enumerate(row.fields)
    ]


def _renumber(row: RowLine, old: int, new: int) -> None:
    row.comment = renumbered(row.comment, old, new)


def _continuation_prefix(rows: list[RowLine], section_of: list[str], k: int) -> str:
    """The prefix of a row that is not its section's first: a neighbour's, else the first row's with "[" as space."""
    for j in (k, k + 1, k - 1):
        if 0 <= j < len(rows) and section_of[j] == section_of[k] and not _opens(rows, section_of, j):
            return rows[j].prefix
    return re.sub(r"[\[\-]", " ", rows[k].prefix)


def _opens(rows: list[RowLine], section_of: list[str], j: int) -> bool:
    return "[" in rows[j].prefix


def _closes(row: RowLine) -> bool:
    return "]" in row.between


def render(
    text: str,
    lay: Layout,
    old_rows: Sequence[Any],
    new_rows: Sequence[Any],
    index_map: dict[int, int],
    inserted: dict[int, int],
    changed_rows: Sequence[int],
    row_text: Callable[[list[Any]], str],
    shown: dict[int, int] | None = None,
) -> str:
    """The text after a surgery.

    ``old_rows``/``new_rows``: the graphs' rows (``from_``, ``module``, ``args``); ``index_map``: old -> new index of
    kept rows; ``inserted``: new index -> the old index it follows; ``changed_rows``: new indices whose module and
    args changed in place; ``row_text``: how a list is written as a flow row (the block path's spelling); ``shown``:
    old index -> the number its index comment shows where that is not the index (adopt renumbers those).
    """
    rows = [RowLine(r.line, r.prefix, r.text, r.between, r.comment, r.end, list(r.fields)) for r in lay.rows]
    section_of = list(lay.section_of)
    changed = set(changed_rows)
    for old, new in index_map.items():
        row, target = rows[old], new_rows[new]
        if target.from_ != old_rows[old].from_:
            _set_from(row, target.from_)
        if new in changed:
            mark = f" {row.text[slice(*row.fields[2])]} {OWN_COMMENT}"
            _set_field(row, 2, target.module)
            _set_field(row, 3, row_text(list(target.args)))
            if row.comment.endswith(mark):  # our own comment names the module: "# 9 SE (attnsurgeon)"
                row.comment = f"{row.comment[: -len(mark)]} {target.module} {OWN_COMMENT}"
        _renumber(row, (shown or {}).get(old, old), new)
    extra: dict[int, list[str]] = {}  # line -> new lines after it
    dropped: set[int] = set()
    for old in sorted(set(range(len(rows))) - set(index_map), reverse=True):  # removed rows
        row = rows[old]
        same_before = old > 0 and section_of[old - 1] == section_of[old]
        same_after = old + 1 < len(rows) and section_of[old + 1] == section_of[old]
        if not same_before and not same_after:
            raise ModelFileError(f"layer {old} is the only row of its section; a section cannot be left empty")
        if _opens(rows, section_of, old) and same_after:
            rows[old + 1].prefix = row.prefix
        if not same_after and lay.flow[section_of[old]]:  # the last row goes: its neighbour ends the section
            rows[old - 1].between = row.between if rows[old - 1].comment else row.between.rstrip(" \t")
        dropped.add(row.line)
    for new in sorted(inserted):  # each after the row it follows, in index order
        k = inserted[new]
        prev = rows[k]
        target = new_rows[new]
        body = row_text([target.from_, target.repeats, target.module, list(target.args)])
        between = prev.between
        last = k + 1 >= len(rows) or section_of[k + 1] != section_of[k]
        if last and lay.flow[section_of[k]] and not prev.between.lstrip().startswith(","):
            prev.between = "," + prev.between.replace("]", "").lstrip(",")
        gap = re.search(r"[ \t]*$", between).group(0) if prev.comment else "  "  # type: ignore[union-attr]
        if not prev.comment and lay.flow[section_of[k]]:
            between = between.rstrip(" \t") + gap
        elif not prev.comment:
            between = " "
        prefix = _continuation_prefix(rows, section_of, k)
        line = f"{prefix}{body}{between}# {new} {target.module} {OWN_COMMENT}{prev.end or newline(lay.lines)}"
        extra.setdefault(prev.line, []).append(line)
        if not prev.end:  # the row was the file's last line: it now needs a line ending
            prev.end = newline(lay.lines)
            extra[prev.line][-1] = extra[prev.line][-1].rstrip("\r\n")
    by_line = {r.line: r for r in rows}
    out = []
    for n, raw in enumerate(lay.lines):
        if n in dropped:
            continue
        out.append(by_line[n].render() if n in by_line else raw)
        out += extra.get(n, [])
    return "".join(out)


def newline(lines: list[str]) -> str:
    return "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
