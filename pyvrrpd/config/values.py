"""Walking statements and reading typed keyword values.

Owns: the diagnostics sink (`Reporter`), the statement cursor that matches
`{ ... }` blocks (`Cursor`), and the readers for integers, decimals, booleans
and strings that produce compiler-style messages located at the offending
token. Must not know any block's keywords.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from .lexer import Stmt, Token
from .model import Diagnostic, Severity, SourceLoc

_INT = re.compile(r"[+-]?[0-9]+\Z")
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")
TRUE_WORDS = frozenset({"on", "true", "yes"})
FALSE_WORDS = frozenset({"off", "false", "no"})


class Reporter:
    """Collects every diagnostic; parsing never stops at the first error."""

    def __init__(self, diagnostics: Sequence[Diagnostic] = ()) -> None:
        self.diagnostics: list[Diagnostic] = list(diagnostics)

    def error(self, at: Token, message: str) -> None:
        self.diagnostics.append(Diagnostic(Severity.ERROR, at.loc, message, at.source_line))

    def warn(self, at: Token, message: str) -> None:
        self.diagnostics.append(Diagnostic(Severity.WARNING, at.loc, message, at.source_line))

    def warn_silent(self, at: Token, message: str) -> None:
        """A warning keepalived only logs: its `-t` stays 0 (parity tests)."""
        self.diagnostics.append(
            Diagnostic(Severity.WARNING, at.loc, message, at.source_line, keepalived_silent=True)
        )

    def error_at(self, loc: SourceLoc, message: str) -> None:
        self.diagnostics.append(Diagnostic(Severity.ERROR, loc, message))

    @property
    def has_errors(self) -> bool:
        return any(d.severity is Severity.ERROR for d in self.diagnostics)


class Cursor:
    """Steps through a list of statements, one block level at a time."""

    def __init__(self, stmts: Sequence[Stmt], rep: Reporter) -> None:
        self.stmts = stmts
        self.rep = rep
        self.pos = 0

    def next(self) -> Stmt | None:
        if self.pos >= len(self.stmts):
            return None
        stmt = self.stmts[self.pos]
        self.pos += 1
        return stmt

    def peek_is_open(self) -> bool:
        return self.pos < len(self.stmts) and self.stmts[self.pos].keyword.is_open

    def block(self, owner: Stmt) -> Cursor | None:
        """Consume the `{ ... }` that must follow `owner`; a cursor over its body.

        Missing `{` or `}` are reported here. A block left open at the end of
        input still yields its body so its contents get checked too.
        """
        if not self.peek_is_open():
            last = owner.tokens[-1]
            self.rep.error(last, f"missing '{{' after '{_describe(owner)}'")
            return None
        return self._body(owner)

    def lines(self) -> Iterator[Stmt]:
        """The statements of a one-item-per-line block; a nested `{ ... }` is
        reported and skipped (no block of that kind takes sub-blocks)."""
        while (stmt := self.next()) is not None:
            if stmt.keyword.is_open:
                self.rep.error(stmt.keyword, "unexpected '{'")
                self.pos -= 1
                self.skip_optional_block(stmt)
                continue
            yield stmt

    def skip_optional_block(self, owner: Stmt) -> None:
        """Consume a `{ ... }` after `owner` if there is one (ignored keywords)."""
        if self.peek_is_open():
            self._body(owner)

    def _body(self, owner: Stmt) -> Cursor:
        opener = self.stmts[self.pos].keyword
        self.pos += 1
        start = self.pos
        depth = 1
        while self.pos < len(self.stmts):
            tok = self.stmts[self.pos].keyword
            if tok.is_open:
                depth += 1
            elif tok.is_close:
                depth -= 1
                if depth == 0:
                    body = self.stmts[start : self.pos]
                    self.pos += 1
                    return Cursor(body, self.rep)
            self.pos += 1
        self.rep.error(
            opener,
            f"missing '}}': the block of '{_describe(owner)}' opened here is never closed",
        )
        return Cursor(self.stmts[start:], self.rep)


def _describe(stmt: Stmt) -> str:
    return " ".join(t.text for t in stmt.tokens[:2])


def need_arg(rep: Reporter, stmt: Stmt, index: int, expect: str) -> Token | None:
    """The argument at `index`, or an error naming what was expected."""
    if index < len(stmt.tokens):
        return stmt.tokens[index]
    rep.error(stmt.tokens[-1], f"{stmt.keyword.text} needs a value: {expect}")
    return None


def extra_args(rep: Reporter, stmt: Stmt, allowed: int) -> None:
    """Warn about words beyond the `allowed` arguments (keepalived ignores them)."""
    if len(stmt.tokens) > allowed + 1:
        tok = stmt.tokens[allowed + 1]
        rep.warn(tok, f"unexpected extra word '{tok.text}' after '{stmt.keyword.text}'; ignored")


def line_block(rep: Reporter, stmt: Stmt, body: Cursor) -> Iterator[Stmt]:
    """The lines of the `{ ... }` that must follow `stmt` (a keyword with no
    argument: unicast_peer, track_interface, virtual_routes ...), opened now."""
    extra_args(rep, stmt, 0)
    inner = body.block(stmt)
    return iter(()) if inner is None else inner.lines()


def int_value(
    rep: Reporter,
    stmt: Stmt,
    lo: int,
    hi: int,
    *,
    index: int = 1,
    what: str = "",
    check_extra: bool = True,
) -> int | None:
    """An integer in lo..hi; errors say the keyword, the range and the bad text."""
    expect = f"an integer {lo}..{hi}"
    tok = need_arg(rep, stmt, index, expect)
    if tok is None:
        return None
    if index == 1 and check_extra:
        extra_args(rep, stmt, 1)
    name = what or stmt.keyword.text
    if _INT.match(tok.text):
        value = int(tok.text)
        if lo <= value <= hi:
            return value
    rep.error(tok, f"{name} must be {expect}, got '{tok.text}'")
    return None


def parse_int(text: str) -> int | None:
    return int(text) if _INT.match(text) else None


def parse_decimal(text: str) -> float | None:
    return float(text) if _DECIMAL.match(text) else None


def decimal_value(rep: Reporter, stmt: Stmt, lo: float, hi: float, unit: str = "") -> float | None:
    """A decimal number in lo..hi (seconds for timers)."""
    expect = f"a number {_fmt(lo)}..{_fmt(hi)}{unit}"
    tok = need_arg(rep, stmt, 1, expect)
    if tok is None:
        return None
    extra_args(rep, stmt, 1)
    value = parse_decimal(tok.text)
    if value is not None and lo <= value <= hi:
        return value
    rep.error(tok, f"{stmt.keyword.text} must be {expect}, got '{tok.text}'")
    return None


def bool_value(rep: Reporter, stmt: Stmt) -> bool | None:
    """`keyword` alone is true; else on|off|true|false|yes|no."""
    if len(stmt.tokens) == 1:
        return True
    extra_args(rep, stmt, 1)
    tok = stmt.tokens[1]
    word = tok.text.lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    rep.error(
        tok,
        f"{stmt.keyword.text} must be on|off|true|false|yes|no (or nothing), got '{tok.text}'",
    )
    return None


def str_value(rep: Reporter, stmt: Stmt, expect: str = "a string") -> str | None:
    tok = need_arg(rep, stmt, 1, expect)
    if tok is None:
        return None
    extra_args(rep, stmt, 1)
    return tok.text


def flag(rep: Reporter, stmt: Stmt) -> bool:
    """A keyword that takes no value."""
    extra_args(rep, stmt, 0)
    return True


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) else str(x)
