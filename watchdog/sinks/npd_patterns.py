"""Our rules' Python regexes → RE2 (Go ``regexp``) patterns that match in Node Problem Detector
exactly where they match here. Pure: text in, text out.

What NPD does with a rule's ``pattern`` (pkg/systemlogmonitor/log_buffer.go): it compiles
``pattern + `\\z``` and searches the buffered lines joined with ``"\\n"``, newest last. Our rules
search one line at a time. So the exported pattern

* is one group, ``(?:...)``: NPD appends ``\\z`` without a group, and a top-level ``a|b`` would
  anchor only its last branch (newer NPD checks for it; older ones match ``a`` anywhere);
* never consumes a newline (``.``, negated classes and ``\\s`` get ``\\n`` taken out), and ends
  with ``[^\\n]*``: the match lies inside the newest line, whatever the buffer size;
* spells out Python's Unicode meaning of ``\\d``, ``\\w``, ``\\s`` (Go's are ASCII-only), and under
  ``(?i)`` the letters Python equates beyond RE2's case folding (``İ`` and ``ı`` for ``i``);
  ``^``/``\\A`` become "start of a line", ``$``/``\\Z`` "end of a line".

What RE2 cannot express (look-arounds, back-references, conditionals, possessive or atomic
groups, a Unicode ``\\b`` inside a pattern, an ``exclude`` list) raises ``Untranslatable`` with the reason.
"""
from __future__ import annotations

import _sre  # type: ignore[import-not-found,unused-ignore]
import re

# The parser of the standard library's own engine: the one place where a pattern's meaning is
# known exactly (typeshed has no stubs for these private modules, hence Any).
import re._constants as C  # type: ignore[import-not-found,unused-ignore]
import re._parser as P  # type: ignore[import-not-found,unused-ignore]
from functools import cache, lru_cache
from re._casefix import _EXTRA_CASES  # type: ignore[import-not-found,unused-ignore]
from typing import Any

_C: Any = C
_P: Any = P

MAX_RE2_REPEAT = 1000
"""RE2 refuses a counted repetition above 1000."""

LINE_TAIL = r"[^\n]*"
"""Runs from the end of our match to the end of the newest line (NPD appends ``\\z``)."""

# Python's str-pattern \s: str.isspace() characters (Unicode 14), newline left out (a line has none).
_SPACE = r"\t\x0b\x0c\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
# Python's str-pattern \w is exactly letters, numbers and "_" (checked code point by code point in the tests).
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"
_ASCII_SPACE = r"\t\x0b\x0c\r "
_ASCII_WORD = r"0-9A-Za-z_"
_ASCII_DIGIT = r"0-9"


class Untranslatable(ValueError):
    """The pattern uses something RE2 cannot express the same way; ``str(e)`` says what."""


def npd_pattern(patterns: list[str], exclude: list[str] | tuple[str, ...] = ()) -> str:
    """One NPD rule pattern equivalent to "some pattern is found in the line" (our ``Rule.matches``)."""
    if exclude:
        raise Untranslatable("its exclude patterns ('but not when ...') have no RE2 equivalent")
    if not patterns:
        raise Untranslatable("it has no pattern")
    branches = [translate(p) for p in patterns]
    body = branches[0] if len(branches) == 1 else "|".join(f"(?:{b})" for b in branches)
    return f"(?:{body}){LINE_TAIL}"


def translate(pattern: str) -> str:
    """One Python pattern → RE2 syntax confined to a single line (see the module docstring)."""
    try:
        tree = _P.parse(pattern, 0)
    except re.error as e:
        raise Untranslatable(f"not a valid pattern: {e}") from e
    flags = int(tree.state.flags)
    body = _Emitter(pattern).seq(tree, flags, top=True)
    return f"(?i:{body})" if flags & re.IGNORECASE else body


class _Emitter:
    def __init__(self, source: str) -> None:
        self.source = source

    def seq(self, sub: Any, flags: int, top: bool = False) -> str:
        items = list(sub)
        out = []
        for i, (op, av) in enumerate(items):
            if top and op is _C.AT and av is _C.AT_BOUNDARY and not flags & re.ASCII:
                out.append(_edge_boundary(items, i, flags))
            else:
                out.append(self.item(op, av, flags))
        return "".join(out)

    def item(self, op: Any, av: Any, flags: int) -> str:
        if op is _C.LITERAL:
            if av == 10:
                return "[^\\x00-\\x{10ffff}]"  # a line holds no newline
            extra = _case_extras(av) if flags & re.IGNORECASE else ()
            return f"[{''.join(map(_class_char, (av, *extra)))}]" if extra else _literal(av)
        if op is _C.NOT_LITERAL:
            extra = _case_extras(av) if flags & re.IGNORECASE else ()
            return f"[^{''.join(map(_class_char, (av, *extra)))}\\n]"
        if op is _C.ANY:
            return r"[^\n]"  # DOTALL or not: the newline never occurs inside a line
        if op is _C.IN:
            return _charclass(av, flags)
        if op is _C.BRANCH:
            return "(?:" + "|".join(self.seq(s, flags) for s in av[1]) + ")"
        if op is _C.SUBPATTERN:
            _group, add, delete, sub = av
            inner = self.seq(sub, (flags | add) & ~delete)
            if add & re.IGNORECASE and not flags & re.IGNORECASE:
                return f"(?i:{inner})"
            if delete & re.IGNORECASE and flags & re.IGNORECASE:
                return f"(?-i:{inner})"
            return f"(?:{inner})"
        if op in (_C.MAX_REPEAT, _C.MIN_REPEAT):
            lo, hi, sub = av
            if lo > MAX_RE2_REPEAT or (hi != _C.MAXREPEAT and hi > MAX_RE2_REPEAT):
                raise Untranslatable(f"a repetition count above RE2's limit of {MAX_RE2_REPEAT}")
            lazy = "?" if op is _C.MIN_REPEAT else ""
            inner = self.seq(sub, flags)
            single = len(sub) == 1 and sub[0][0] in (_C.LITERAL, _C.NOT_LITERAL, _C.ANY, _C.IN)
            return f"{inner if single else f'(?:{inner})'}{_quantifier(lo, hi)}{lazy}"
        if op is _C.AT:
            return _at(av, flags)
        reason = {
            "ASSERT": "a look-ahead or look-behind", "ASSERT_NOT": "a negative look-ahead or look-behind",
            "GROUPREF": "a back-reference", "GROUPREF_EXISTS": "a conditional group",
            "POSSESSIVE_REPEAT": "a possessive repetition", "ATOMIC_GROUP": "an atomic group",
        }.get(str(op), f"the construct {op}")
        raise Untranslatable(f"{reason}, which RE2 does not support")


def _quantifier(lo: int, hi: Any) -> str:
    if hi == _C.MAXREPEAT:
        return {0: "*", 1: "+"}.get(lo, f"{{{lo},}}")
    if (lo, hi) == (0, 1):
        return "?"
    return f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"


def _at(where: Any, flags: int) -> str:
    if where in (_C.AT_BEGINNING, _C.AT_BEGINNING_STRING, _C.AT_BEGINNING_LINE):
        return "(?m:^)"
    if where in (_C.AT_END, _C.AT_END_STRING, _C.AT_END_LINE):
        return "(?m:$)"
    if where in (_C.AT_BOUNDARY, _C.AT_NON_BOUNDARY) and flags & re.ASCII:
        return r"\b" if where is _C.AT_BOUNDARY else r"\B"
    raise Untranslatable("a Unicode word boundary (\\b or \\B), which RE2 knows only for ASCII; add (?a) if that is meant")


@lru_cache(maxsize=1)
def _lower_inverse() -> dict[int, tuple[int, ...]]:
    """lower-case code point → the code points whose simple lower case it is (itself excluded)."""
    out: dict[int, list[int]] = {}
    for c in range(0x110000):
        lo = _sre.unicode_tolower(c)
        if lo != c:
            out.setdefault(lo, []).append(c)
    return {k: tuple(v) for k, v in out.items()}


@cache
def _case_extras(code: int) -> tuple[int, ...]:
    """Under IGNORECASE, what Python's ``re`` takes as the same letter as ``code`` beyond its lower
    and upper case, which RE2's case folding does not always know (``İ`` and ``ı`` for ``i``).

    Python's engine compares simple lower cases, with a few extra equivalences (``re._casefix``);
    RE2 follows the case-folding orbits, which lie inside that set: listing the set's members in
    a class under ``(?i)`` makes both the same.
    """
    lo = _sre.unicode_tolower(code)
    same = {lo, *_EXTRA_CASES.get(lo, ())}
    found = {c for s in same for c in (s, *_lower_inverse().get(s, ()))}
    usual = {lo, ord(chr(lo).upper()) if len(chr(lo).upper()) == 1 else lo, code}
    return tuple(sorted(found - usual))


def _edge_boundary(items: list[Any], i: int, flags: int) -> str:
    """A Unicode ``\\b`` at the very start or end of a pattern, beside a word character.

    There RE2 can spell it by consuming the neighbour: the line's edge or a non-word character.
    Consuming it is harmless where it stands: the search is unanchored before the pattern and
    the rest of the line follows it anyway.
    """
    word = _categories(flags)[_C.CATEGORY_WORD][1]

    def is_word_literal(item: Any) -> bool:
        op, av = item
        return bool(op is _C.LITERAL and (chr(av).isalnum() or chr(av) == "_"))

    if i == 0 and len(items) > 1 and is_word_literal(items[1]):
        return f"(?:(?m:^)|[^{word}\\n])"
    if i == len(items) - 1 and i > 0 and is_word_literal(items[i - 1]):
        return f"(?:(?m:$)|[^{word}\\n])"
    return _at(_C.AT_BOUNDARY, flags)


_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_CLASS_SPECIAL = frozenset("\\]^-[")


def _literal(code: int, special: frozenset[str] = _SPECIAL) -> str:
    ch = chr(code)
    if 0x20 <= code < 0x7F:
        return "\\" + ch if ch in special else ch  # RE2 takes an escaped punctuation mark as itself
    return f"\\x{{{code:x}}}"


def _class_char(code: int) -> str:
    return _literal(code, _CLASS_SPECIAL)


def _categories(flags: int) -> dict[Any, tuple[bool, str]]:
    """category → (negated, members without the newline)."""
    ascii_only = bool(flags & re.ASCII)
    digit, word, space = (_ASCII_DIGIT, _ASCII_WORD, _ASCII_SPACE) if ascii_only else (_DIGIT, _WORD, _SPACE)
    return {
        _C.CATEGORY_DIGIT: (False, digit), _C.CATEGORY_NOT_DIGIT: (True, digit),
        _C.CATEGORY_WORD: (False, word), _C.CATEGORY_NOT_WORD: (True, word),
        _C.CATEGORY_SPACE: (False, space), _C.CATEGORY_NOT_SPACE: (True, space),
    }


def _charclass(items: Any, flags: int) -> str:
    negate = bool(items) and items[0][0] is _C.NEGATE
    members: list[str] = []
    negated_cats: list[str] = []
    cats = _categories(flags)
    ignorecase = bool(flags & re.IGNORECASE)
    for op, av in items[1:] if negate else items:
        if op is _C.LITERAL:
            if av != 10:
                members.append(_class_char(av))
                members += [_class_char(c) for c in _case_extras(av)] if ignorecase else []
        elif op is _C.RANGE:
            lo, hi = av
            if ignorecase and hi - lo < 1024:
                members += sorted({_class_char(c) for i in range(lo, hi + 1) for c in _case_extras(i)
                                   if not lo <= c <= hi})
            for a, b in ((lo, min(hi, 9)), (max(lo, 11), hi)):  # the newline taken out
                if a <= b:
                    members.append(_class_char(a) if a == b else f"{_class_char(a)}-{_class_char(b)}")
        elif op is _C.CATEGORY and av in cats:
            neg, text = cats[av]
            (negated_cats if neg else members).append(text)
        else:
            raise Untranslatable(f"the class item {op} {av}, which has no RE2 equivalent")
    if negated_cats:
        # [\S] is "not space"; [\Sx] and [^\S] mix a complement into a union: only the simple ones.
        if len(negated_cats) == 1 and not members and not negate:
            return f"[^{negated_cats[0]}\\n]"
        if len(negated_cats) == 1 and not members and negate:
            return f"[{negated_cats[0]}]"
        raise Untranslatable("a class mixing \\D, \\W or \\S with other members")
    if negate:
        return f"[^{''.join(members)}\\n]"
    if not members:
        return "[^\\x00-\\x{10ffff}]"  # only the newline: nothing inside a line
    return f"[{''.join(members)}]"
