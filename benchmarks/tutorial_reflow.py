"""Re-flowing module code pasted into prose whose line breaks and/or indentation were lost (the YOLO tutorial pages
that ``bench_tutorial_modules.py`` reads): :func:`reflow` rebuilds runnable Python with the heuristics below."""

from __future__ import annotations

import keyword
import re

_STATEMENT_KEYWORDS = ("class ", "def ", "return ", "return(", "from ", "import ", "assert ", "if ", "elif ", "else:")
_STATEMENT_KEYWORDS += ("for ", "super(", "self.", "#")
_IDENT = re.compile(r"[A-Za-z_]\w*")


def depth_scan(text: str) -> list[int]:
    """Bracket depth before each character, skipping string literals."""
    depths, depth, quote, i = [], 0, "", 0
    while i < len(text):
        ch = text[i]
        depths.append(depth)
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        i += 1
    return depths


def _split_keywords(text: str) -> list[str]:
    """Break before statement keywords glued to the previous character (a lost line break leaves no space)."""
    depth = depth_scan(text)
    cuts, skip = [0], 0
    for i in range(1, len(text)):
        if i < skip or depth[i] or text[i - 1] in " \t\n.(,=[":
            continue
        for kw in _STATEMENT_KEYWORDS:
            if text.startswith(kw, i):
                if kw == "import " and re.search(r"from\s+[\w.]+\s*$", text[cuts[-1] : i]):
                    break  # 'from x import y'
                if kw[0].isalpha() and text[i - 1] == "_":
                    break
                if kw == "self." and (text[i - 1].isalnum() is False and text[i - 1] not in ")]}:\"'"):
                    break
                cuts.append(i)
                skip = i + len(kw)  # 'elif' must not also split at its 'if'
                break
    return [text[a:b].strip() for a, b in zip(cuts, [*cuts[1:], len(text)], strict=True) if text[a:b].strip()]


def _read_names(text: str) -> set[str]:
    """Identifiers that are used (not only assigned) somewhere: candidates for a glued statement's target."""
    names = set()
    for m in _IDENT.finditer(text):
        rest = text[m.end() :].lstrip(" ")
        if not (rest.startswith("=") and not rest.startswith("==")) and not re.match(r"[-+*/]=", rest):
            names.add(m.group())
    return names


def _assignments(text: str) -> list[int]:
    depth = depth_scan(text)
    hits = []
    for m in re.finditer(r"(?<![=!<>+\-*/%&|^])([-+*/]?=)(?!=)", text):
        if depth[m.start()] == 0:
            hits.append(m.start())
    return hits


def _target_start(text: str, eq: int, floor: int, read: set[str]) -> int:
    """Where the assignment target before text[eq] starts: names (a, b, c), attributes and subscripts."""
    i = eq
    while i > floor and text[i - 1] == " ":
        i -= 1
    while True:
        if i > floor and text[i - 1] == "]":  # subscript: walk back to '['
            depth = 0
            while i > floor:
                i -= 1
                depth += {"]": 1, "[": -1}.get(text[i], 0)
                if depth == 0:
                    break
        j = i
        while j > floor and (text[j - 1].isalnum() or text[j - 1] in "_."):
            j -= 1
        run = text[j:i]
        # glued to the previous statement: 'x.shaper' is 'x.shape' + 'r', 'valuesq_inp' is comment + 'q_inp';
        # keep the longest suffix of the last name that the code uses elsewhere
        last = run.rsplit(".", 1)[-1]
        if last and (last[0].isdigit() or last not in read or keyword.iskeyword(last)):
            for k in range(1, len(last)):
                if last[k:] in read and not last[k].isdigit():
                    return i - len(last) + k
        start = j
        # a tuple target continues backwards over ', name' only with used names
        m = re.search(r"([A-Za-z_]\w*)\s*,\s*$", text[floor:start])
        if not m or keyword.iskeyword(m.group(1)):
            return start
        name = m.group(1)
        if name in read:
            i = floor + m.start(1) + len(name)
            continue
        glued = [k for k in range(1, len(name)) if name[k:] in read and not name[k].isdigit()]
        return floor + m.start(1) + glued[0] if glued else start


def _split_assignments(line: str, read: set[str]) -> list[str]:
    """Break a chunk before every glued assignment; a chunk that starts with '#' loses the comment text."""
    comment = line.startswith("#")  # the comment runs up to the first statement found in it
    out, start = [], 0
    for eq in _assignments(line):
        t = _target_start(line, eq, start, read)
        before = line[start:t].strip()
        if t > start and (comment or (before and not before.endswith(("=", ",")))):
            if not comment:
                out.append(before)
            comment, start = False, t
    rest = line[start:].strip()
    if rest and not comment:
        out.append(rest)
    return out


def _split_glued_calls(line: str, read: set[str], counts: dict[str, int]) -> list[str]:
    """'...finfo(d).maxsim.masked_fill_(...)': an attribute that exists nowhere else but ends in a used name."""
    m = re.search(r"\.([A-Za-z_]\w*)\.[A-Za-z_]\w*\(", line)
    if m and counts.get(m.group(1), 0) == 1:
        name = m.group(1)
        for k in range(1, len(name)):
            if name[k:] in read:
                return [line[: m.start(1) + k], line[m.start(1) + k :]]
    return [line]


def _logical_lines(text: str) -> list[str]:
    """Lines joined while brackets are open (for documents with intact line breaks)."""
    out, buf = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if not s:
            continue
        buf = f"{buf} {s}" if buf else s
        if depth_scan(buf + " ")[-1] <= 0:
            out.append(buf)
            buf = ""
    return out


def _reindent(lines: list[str]) -> str:
    """Indentation from structure: classes at 0, methods (first arg self) at 1, bodies one deeper than headers; an
    if/elif chain's last branch ends after as many statements as its first branch had (the branches of the tutorials'
    chains are parallel), or at the next def/class."""
    out, level, in_class = [], 0, False
    chain: list[list[int]] = []  # open if-chains: [header level, statements in the first branch (-1: unknown), now]
    for line in lines:
        if line.startswith("#"):
            continue
        if line.startswith("if __name__"):
            break
        is_branch = line.startswith(("elif ", "else:"))
        if chain and not is_branch and chain[-1][1] >= 0 and chain[-1][2] >= chain[-1][1]:
            level = chain.pop()[0]  # the last branch is as long as the first: the chain is over
        if line.startswith("class "):
            lvl, in_class, chain = 0, True, []
        elif line.startswith("def "):
            in_class = in_class and re.match(r"def \w+\(\s*self\b", line) is not None
            lvl, chain = (1 if in_class else 0), []
        elif is_branch and chain:
            lvl = chain[-1][0]
            if chain[-1][1] < 0:
                chain[-1][1] = chain[-1][2]
            chain[-1][2] = 0
        else:
            lvl = level
            if chain and lvl == chain[-1][0] + 1:
                chain[-1][2] += 1
        out.append("    " * lvl + line)
        if line.startswith("if ") and line.endswith(":"):
            chain.append([lvl, -1, 0])
        level = lvl + 1 if line.endswith(":") and depth_scan(line)[-1] == 0 else lvl
    return "\n".join(out) + "\n"


def reflow(text: str) -> str:
    """Rebuild Python source from a document that lost its line breaks and/or its indentation.

    Heuristics (good enough for the tutorial pages, not for Python at large): a statement keyword glued to the
    previous character starts a new line (a lost line break leaves no space); an assignment at bracket depth 0 starts
    a new line at its target, whose first name, when glued to the previous text, is cut to its longest suffix that the
    code uses elsewhere (``x.shaper = ...`` -> ``x.shape`` / ``r = ...``); comments run to the next statement;
    indentation is rebuilt by :func:`_reindent`.
    """
    if "\n" in text.strip() and max(len(s) for s in text.splitlines()) < 200:
        lines = _logical_lines(text)  # only the indentation was lost
    else:
        chunks = _split_keywords(text.replace("\n", ""))
        read = _read_names(re.sub(r"#[^=]*", " ", text))
        counts: dict[str, int] = {}
        for m in _IDENT.finditer(text):
            counts[m.group()] = counts.get(m.group(), 0) + 1
        lines = [p for c in chunks for q in _split_assignments(c, read) for p in _split_glued_calls(q, read, counts)]
    return _reindent(lines)
