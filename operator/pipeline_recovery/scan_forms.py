"""Scan forms: what the multi-pattern engines search for, derived from each rule's regex."""

from __future__ import annotations

import re
from typing import Any

_PARSER: Any = getattr(re, "_parser")  # noqa: B009  (private, but the only parser of `re` syntax)
_C: Any = getattr(re, "_constants")  # noqa: B009
_WS = frozenset(b" \t\n\r\x0b\x0c")
# \s must not run over the newline: every form matches within one line.
_CATEGORY = {_C.CATEGORY_DIGIT: r"\d", _C.CATEGORY_NOT_DIGIT: r"\D",
             _C.CATEGORY_SPACE: r"\t\x0b\x0c\r ", _C.CATEGORY_NOT_SPACE: r"\S",
             _C.CATEGORY_WORD: r"\w", _C.CATEGORY_NOT_WORD: r"\W"}
_REPEATS = (_C.MAX_REPEAT, _C.MIN_REPEAT)
_SAFE = frozenset("_-:,/'\"`<>=!@%&~;# ")


def _char(code: int, in_class: bool = False) -> str:
    ch = chr(code)
    if ch.isalnum() or (ch in _SAFE and not (in_class and ch == "-")):
        return ch
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    return ch if code > 0x7F else "\\" + ch


def _class(items: Any) -> str:
    """A class as engines that scan bytes read it. A character beyond ASCII is several
    bytes in UTF-8, so it cannot sit in a byte class: a class that may match one (a curly
    quote or an apostrophe) becomes an alternation of the character and the rest of the
    class, and a negated class lets it through (a superset)."""
    negated = any(op is _C.NEGATE for op, _ in items)
    wide = [arg for op, arg in items if op is _C.LITERAL and arg > 0x7F]
    if wide:
        rest = [(op, arg) for op, arg in items if not (op is _C.LITERAL and arg > 0x7F)]
        if negated:
            return _class(rest)
        narrow = _class(rest) if rest else ""
        return "(?:" + "|".join([chr(code) for code in wide] + ([narrow] if narrow else [])) + ")"
    parts = []
    for op, arg in items:
        if op is _C.NEGATE:
            continue
        if op is _C.LITERAL:
            parts.append(_char(arg, True))
        elif op is _C.RANGE:
            parts.append(_char(arg[0], True) + "-" + _char(arg[1], True))
        elif op is _C.CATEGORY:
            parts.append(_CATEGORY[arg])
        else:
            raise ValueError(f"unsupported class item {op}")
    # A negated class must not run over the newline: every form matches within one line.
    return ("[^\\n" if negated else "[") + "".join(parts) + "]"


def _quantifier(low: int, high: int) -> str:
    if high is _C.MAXREPEAT or high == _C.MAXREPEAT:
        return {0: "*", 1: "+"}.get(low, f"{{{low},}}")
    return "?" if (low, high) == (0, 1) else f"{{{low},{high}}}"


_SPACE_CLASS = "[\\t\\x0b\\x0c\\r ]"  # \s without the newline


def _unparse(seq: Any) -> str:
    out: list[str] = []
    for op, arg in seq:
        if op is _C.LITERAL:
            out.append(_char(arg))
        elif op is _C.NOT_LITERAL:
            out.append("[^\\n" + _char(arg, True) + "]")
        elif op is _C.ANY:
            out.append("[^\\n]")
        elif op is _C.IN:
            out.append(_class(arg) if arg != [(_C.CATEGORY, _C.CATEGORY_SPACE)] else _SPACE_CLASS)
        elif op is _C.AT:
            continue  # anchors and \b: the confirming match checks them on the cleaned line
        elif op is _C.SUBPATTERN:
            out.append("(?:" + _unparse(arg[-1]) + ")")
        elif op is _C.BRANCH:
            out.append("(?:" + "|".join(_unparse(b) for b in arg[1]) + ")")
        elif op in _REPEATS:
            out.append("(?:" + _unparse(arg[2]) + ")" + _quantifier(arg[0], arg[1]))
        else:
            raise ValueError(f"unsupported regex construct {op}")
    return "".join(out)


def _trim(seq: list[Any]) -> list[Any]:
    """Drop what may only extend a match at its ends (optional and repeated tails, anchors),
    so an engine reports one end per occurrence, not one per byte of a trailing repeat."""
    seq = [item for item in seq if item[0] is not _C.AT]
    while seq:
        op, arg = seq[-1]
        if op is _C.SUBPATTERN:  # a group is only grouping here: splice its items in
            seq = seq[:-1] + [item for item in arg[-1] if item[0] is not _C.AT]
        elif op in _REPEATS:
            seq = seq[:-1] + list(arg[2]) * arg[0]
            if arg[0]:
                break
        else:
            break
    while seq and ((seq[0][0] in _REPEATS and seq[0][1][0] == 0) or (
            seq[0][0] is _C.BRANCH and any(all(o is _C.AT for o, _ in b) for b in seq[0][1][1]))):
        seq = seq[1:]  # a leading (?:^|[\s:]) or \s* only widens the match to the left
    return seq


def _is_gap(item: Any) -> bool:
    op, arg = item
    if op not in _REPEATS or arg[1] != _C.MAXREPEAT or len(arg[2]) != 1:
        return False
    inner_op, inner = arg[2][0]
    return inner_op in (_C.ANY, _C.NOT_LITERAL) or (
        inner_op is _C.IN and any(o is _C.NEGATE for o, _ in inner))


def _literal_count(seq: Any) -> int:
    total = 0
    for op, arg in seq:
        if op is _C.LITERAL and arg not in _WS:
            total += 1
        elif op is _C.SUBPATTERN:
            total += _literal_count(arg[-1])
        elif op is _C.BRANCH:
            total += min(_literal_count(branch) for branch in arg[1])
        elif op in _REPEATS and arg[0] >= 1:
            total += _literal_count(arg[2])
    return total


def _best_piece(seq: list[Any]) -> list[Any]:
    """The stretch between `.*`-like gaps with the most literal bytes: a gap makes the engine
    track every line that holds what comes before it, so the form keeps one side only."""
    pieces: list[list[Any]] = [[]]
    for item in seq:
        if _is_gap(item):
            pieces.append([])
        else:
            pieces[-1].append(item)
    return max(pieces, key=_literal_count) if len(pieces) > 1 else seq


ANCHOR_RUN = 4  # literal characters in a row that make a good place for a form to start


def _from_anchor(seq: list[Any]) -> list[Any]:
    """From the first run of ANCHOR_RUN literal characters on: what comes before it (a
    `\\d+/\\d+` before " nodes are available", a path class before ".py:") only narrows
    the match on the left, and Hyperscan would track it on every line that could start it.
    The first run, not the longest: " test(s)?, [1-9]\\d* failure" stays that, where
    " failure" alone would be found in every `failures=0`."""
    index, size = 0, len(seq)
    while index < size:
        if seq[index][0] is not _C.LITERAL:
            index += 1
            continue
        end = index
        while end < size and seq[end][0] is _C.LITERAL:
            end += 1
        if end - index >= ANCHOR_RUN:
            return seq[index:]
        index = end
    return seq


_CLASS_OPS = (_C.IN, _C.ANY, _C.NOT_LITERAL, _C.CATEGORY)


def _drop_class_tail(seq: list[Any]) -> list[Any]:
    """Without the character classes that end it ("; curl [\\d]" as "; curl "): Hyperscan
    keys a literal followed by a class on the literal's end plus the class, a commoner
    pair of bytes than the literal's own."""
    while len(seq) > 1:
        op, arg = seq[-1]
        if op in _CLASS_OPS or (op in _REPEATS and all(o in _CLASS_OPS for o, _ in arg[2])):
            if _literal_count(seq[:-1]) < ANCHOR_RUN:
                break
            seq = seq[:-1]
        else:
            break
    return seq


def _lengthen_anchor(seq: list[Any], limit: int = 4) -> list[list[Any]]:
    """`npm (?:ERR!|error) 404` as `npm ERR! 404|npm error 404`: when the leading literal
    run is followed by a few alternatives that each start with literal text, one form per
    alternative gives Hyperscan longer, rarer literals than "npm " (about 8% faster)."""
    index = 0
    while index < len(seq) and seq[index][0] is _C.LITERAL:
        index += 1
    if 0 < index < len(seq):
        op, arg = seq[index]
        if op is _C.SUBPATTERN and len(arg[-1]) == 1:
            op, arg = arg[-1][0]
        if op is _C.BRANCH and len(arg[1]) <= limit and all(
                branch and branch[0][0] is _C.LITERAL for branch in arg[1]):
            return [seq[:index] + list(branch) + seq[index + 1:] for branch in arg[1]]
    return [seq]


def _alternatives(seq: list[Any]) -> list[Any]:
    """The top-level alternatives. `re`'s parser moves a prefix they share out in front of
    them (`=+ a|=+ b` parses as `=+ (?:a|b)`); handing it back to each keeps the `.*` gaps
    of every alternative at the top, where the form can use them."""
    if len(seq) == 1 and seq[0][0] is _C.BRANCH:
        return list(seq[0][1][1])
    if len(seq) > 1 and seq[-1][0] is _C.BRANCH:
        return [seq[:-1] + list(branch) for branch in seq[-1][1][1]]
    return [seq]


def scan_form(regex: str) -> str:
    """The rule as the engines search for it: its regex with captures, anchors, trailing
    repeats and classes, the weaker side of `.*` gaps and what precedes its first literal
    run dropped, kept within one line. Line starts (`^`) are left to the confirming match,
    which sees the line without the runner's timestamp.
    Engines scan blocks with CSI codes stripped (`native.strip_into`), so every line the rule
    matches once cleaned is found; the confirming match judges the cleaned line."""
    parsed = _PARSER.parse(regex)
    prefix = "(?i)" if parsed.state.flags & re.IGNORECASE else ""
    forms: list[str] = []
    for alt in _alternatives(list(parsed)):
        form = _drop_class_tail(_from_anchor(_trim(_best_piece(list(alt)))))
        forms.extend(_unparse(longer) for longer in _lengthen_anchor(form))
    # Alternatives that differ only in what a gap cut away leave the same form.
    return prefix + "|".join(dict.fromkeys(forms))
