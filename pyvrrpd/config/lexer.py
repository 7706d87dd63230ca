"""Turn keepalived.conf text into statements of located tokens.

Owns: the file-level language of keepalived.conf (keepalived.md 1.1): comments,
double quotes, braces anywhere on a line, `include*` with globs, `$NAME=value`
parameters and their substitution, `@id` conditional lines. Every token keeps
its file, 1-based line and column, and the physical source line, so the parser
can print compiler-style diagnostics.

Also owns the limits that keep a hostile or broken file from hanging or
exhausting the daemon at start (issue 5 item 11): bytes per file and in all,
characters per line and after substitution, brace alternatives per include
line, files included in all, and the time and directory entries include
globbing may spend. Each overflow is one located error, never a hang.

Must not: know any keyword other than the include family, or build the model.
Problems are recorded as diagnostics, never raised.
"""

from __future__ import annotations

import fnmatch
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .model import Diagnostic, Severity, SourceLoc

MAX_INCLUDE_DEPTH = 32
# Bounds against config bombs. Real keepalived.conf files are a few KiB with a
# handful of includes; these are orders of magnitude above that.
MAX_LINE_CHARS = 65536  # keepalived's read_line() ignores longer lines (MAXBUF)
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_TOTAL_BYTES = 16 * 1024 * 1024  # every file read, includes too
MAX_TOTAL_CHARS = 16 * 1024 * 1024  # characters tokenized, after $NAME substitution
MAX_INCLUDE_FILES = 1000  # files read through include lines, in all
MAX_BRACE_PATTERNS = 1024  # alternatives one include line's {a,b} may expand to
MAX_BRACES = 256  # '{' in one include pattern (bounds the expansion's recursion)
MAX_GLOB_ENTRIES = 100_000  # directory entries include globbing may examine, in all
INCLUDE_TIME_BUDGET = 5.0  # seconds include globbing may take, in all
_SHOWN_CHARS = 120  # of an over-long line, in its diagnostic

# include variants (keepalived.md 1.1 item 7); the letters say what is checked.
INCLUDE_KEYWORDS = frozenset(
    {"include", "includer", "includem", "includew", "includeb", "includea"}
)

_DEFINITION = re.compile(r"\s*\$([A-Za-z_][A-Za-z0-9_]*)=(.*)\Z")
_REFERENCE = re.compile(
    r"\$\{_ENV\s+([A-Za-z_][A-Za-z0-9_]*)\}"
    r"|\$\{([A-Za-z_][A-Za-z0-9_]*)\}"
    r"|\$([A-Za-z_][A-Za-z0-9_]*)(?=\s|\Z)"
)
_GLOB_MAGIC = re.compile(r"[*?\[]")
_PLAIN_RUN = re.compile(r'[^\s{}"\\]+')  # word characters with no special meaning
_COMMENT_START = re.compile(r"[#!]")
# Recursive parameter values stop here, so `$A=$A` cannot loop forever.
_MAX_SUBST_DEPTH = 16
# ...and `$A=$A $A $A` cannot grow exponentially: longer expansions are an error.
_MAX_EXPANSION = 65536


@dataclass(frozen=True, slots=True)
class Token:
    """One word of a statement, with quotes removed."""

    text: str
    loc: SourceLoc
    source_line: str  # the physical line, without its newline
    quoted: bool = False
    start: int = 0  # span in the statement's `text` (the expanded logical line)
    end: int = 0

    @property
    def is_open(self) -> bool:
        return self.text == "{" and not self.quoted

    @property
    def is_close(self) -> bool:
        return self.text == "}" and not self.quoted


@dataclass(frozen=True, slots=True)
class Stmt:
    """A logical line: a keyword and its arguments, or a lone brace."""

    tokens: tuple[Token, ...]
    text: str  # the logical line after comment removal and substitution

    @property
    def keyword(self) -> Token:
        return self.tokens[0]

    def raw_from(self, index: int) -> str:
        """The unsplit text from token `index` to the end (quotes kept)."""
        return self.text[self.tokens[index].start : self.tokens[-1].end]


@dataclass(slots=True)
class LexResult:
    stmts: list[Stmt] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def default_config_id() -> str:
    """keepalived's default `-i` config id: the host name up to the first dot."""
    return socket.gethostname().split(".", 1)[0]


class Lexer:
    """Reads one main file (or text) plus everything it includes, in order."""

    def __init__(self, config_id: str | None = None) -> None:
        self.config_id = default_config_id() if config_id is None else config_id
        self.params: dict[str, str] = {}
        self.result = LexResult()
        self._stack: list[str] = []
        self._overflow = False
        self._bytes_read = 0
        self._chars_emitted = 0
        self._included = 0
        self._stopped = False  # a whole-config limit was hit: read nothing more
        self._budget: _GlobBudget | None = None

    # -- diagnostics -------------------------------------------------------

    def _diag(self, sev: Severity, file: str, line: int, col: int, msg: str, src: str) -> None:
        self.result.diagnostics.append(Diagnostic(sev, SourceLoc(file, line, col), msg, src))

    def error(self, file: str, line: int, col: int, msg: str, src: str = "") -> None:
        self._diag(Severity.ERROR, file, line, col, msg, src)

    def warn(self, file: str, line: int, col: int, msg: str, src: str = "") -> None:
        self._diag(Severity.WARNING, file, line, col, msg, src)

    # -- entry points ------------------------------------------------------

    def lex_text(self, text: str, filename: str, base_dir: str) -> LexResult:
        self.result.files.append(filename)
        self._stack.append(filename)
        self._lex(text, filename, base_dir, 0)
        self._stack.pop()
        return self.result

    def lex_file(self, path: str) -> LexResult:
        text = self._read(path, None)
        if text is not None:
            self.lex_text(text, path, os.path.dirname(path))
        return self.result

    def _read(self, path: str, where: tuple[str, int, int, str] | None) -> str | None:
        """Read a config file; report failures at `where` (None: main file)."""
        try:
            if os.path.exists(path) and not os.path.isfile(path):
                # Never open FIFOs or devices: a stray `include /dev/*` must not hang us.
                raise OSError("not a regular file")
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                size = os.fstat(f.fileno()).st_size
                text = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if where is None:
                self.error(path, 0, 0, f"cannot read config: {reason}")
            else:
                file, line, col, src = where
                self.error(file, line, col, f"cannot read included file '{path}': {reason}", src)
            return None
        # Bounded by the bytes read, not st_size alone: /proc files report 0.
        size = max(size, len(text))
        too_big = ""
        if size > MAX_FILE_BYTES:
            too_big = f"'{path}' is larger than {MAX_FILE_BYTES // 2**20} MiB"
        elif self._bytes_read + size > MAX_TOTAL_BYTES:
            too_big = f"configuration files add up to more than {MAX_TOTAL_BYTES // 2**20} MiB"
        if too_big:
            self._stopped = True
            file, line, col, src = where if where is not None else (path, 0, 0, "")
            self.error(file, line, col, f"{too_big}; not read", src)
            return None
        self._bytes_read += size
        return text

    # -- per file ----------------------------------------------------------

    def _lex(self, text: str, filename: str, base_dir: str, depth: int) -> None:
        # A UTF-8 byte order mark (Windows editors write one) is not content.
        text = text.removeprefix("\ufeff")
        lines = text.split("\n")
        i = 0
        while i < len(lines) and not self._stopped:
            lineno = i + 1
            physical = lines[i].rstrip("\r")
            i += 1
            if len(physical) > MAX_LINE_CHARS:
                self._long_line(filename, lineno, physical)
                continue
            body, err_col = _decomment(physical)
            if err_col:
                self.error(filename, lineno, err_col, "unterminated quote", physical)
            stripped = body.strip()
            if not stripped:
                continue
            if stripped.startswith("@"):
                kept = self._conditional(body)
                if kept is None:
                    continue
                body, stripped = kept, kept.strip()
            if stripped.startswith("~"):
                col = body.index("~") + 1
                self.warn(
                    filename,
                    lineno,
                    col,
                    "~SEQ/~LST line repetition is not supported by pyvrrpd; line ignored",
                    physical,
                )
                continue
            first = stripped.split(None, 1)[0]
            if first in INCLUDE_KEYWORDS:
                self._include(first, body, filename, lineno, physical, base_dir, depth)
                continue
            m = _DEFINITION.match(body)
            if m:
                value = m.group(2)
                # A trailing backslash continues a multi-line definition.
                parts: list[str] = []
                length = len(value)
                while value.endswith("\\") and i < len(lines) and length <= _MAX_EXPANSION:
                    parts.append(value[:-1])
                    value, _ = _decomment(lines[i].rstrip("\r"))
                    value = value.strip()
                    length += len(value) + 1
                    i += 1
                if length > _MAX_EXPANSION:
                    col = body.index("$") + 1
                    msg = f"parameter ${m.group(1)} is longer than {_MAX_EXPANSION} characters"
                    self.error(filename, lineno, col, msg, physical)
                    continue
                parts.append(value)
                self.params[m.group(1)] = "\n".join(parts).rstrip("\\").strip()
                continue
            self._emit(body, filename, lineno, physical, base_dir)

    def _long_line(self, filename: str, lineno: int, physical: str) -> None:
        shown = physical[:_SHOWN_CHARS] + "..."
        msg = f"line longer than {MAX_LINE_CHARS} characters; ignored"
        self.error(filename, lineno, 1, msg, shown)

    def _conditional(self, body: str) -> str | None:
        """`@ID rest` keeps `rest` only on config-id ID; `@^ID` negates."""
        lead = len(body) - len(body.lstrip())
        parts = body[lead:].split(None, 1)
        word = parts[0][1:]
        negate = word.startswith("^")
        if negate:
            word = word[1:]
        if (word == self.config_id) == negate or len(parts) < 2:
            return None
        # Blank out the `@ID` prefix so the columns of the rest stay true.
        return " " * (lead + len(parts[0])) + body[lead + len(parts[0]) :]

    def _emit(self, body: str, filename: str, lineno: int, physical: str, base_dir: str) -> None:
        if "$" in body:
            self._overflow = False
            text, origin = self._substitute(body, base_dir)
            if self._overflow:
                col = body.index("$") + 1
                msg = f"parameter expansion longer than {_MAX_EXPANSION} characters"
                self.error(filename, lineno, col, msg, physical)
                return
        else:
            text, origin = body, list(range(len(body) + 1))
        self._chars_emitted += len(text)
        if self._chars_emitted > MAX_TOTAL_CHARS:
            # `$A=<64 KiB>` then a million `$A` lines: bounded here.
            self._stopped = True
            msg = f"configuration expands to more than {MAX_TOTAL_CHARS // 2**20} Mi characters"
            self.error(filename, lineno, 1, f"{msg}; stopped reading", physical)
            return
        offset = 0
        # A multi-line parameter value expands into several logical lines.
        for segment in text.split("\n"):
            seg_origin = origin[offset : offset + len(segment) + 1]
            offset += len(segment) + 1
            self._tokenize(segment, seg_origin, filename, lineno, physical)

    def _substitute(self, body: str, base_dir: str) -> tuple[str, list[int]]:
        """Expand `$NAME`/`${NAME}`; map every output char back to a column."""
        out: list[str] = []
        origin: list[int] = []
        pos = 0
        for m in _REFERENCE.finditer(body):
            value = self._lookup(m, base_dir, 0)
            if value is None:
                continue
            out.append(body[pos : m.start()])
            origin.extend(range(pos, m.start()))
            out.append(value)
            origin.extend([m.start()] * len(value))
            pos = m.end()
            if len(origin) > _MAX_EXPANSION:
                self._overflow = True
                break
        out.append(body[pos:])
        origin.extend(range(pos, len(body) + 1))
        return "".join(out), origin

    def _lookup(self, m: re.Match[str], base_dir: str, depth: int) -> str | None:
        if self._overflow:
            return ""  # already too long: stop the work from multiplying
        env, braced, bare = m.group(1), m.group(2), m.group(3)
        if env is not None:
            return os.environ.get(env, "")
        name = braced if braced is not None else bare
        builtin = {"_PWD": os.path.abspath(base_dir or "."), "_HASH": "#", "_BANG": "!"}
        if name in builtin:
            return builtin[name]
        value = self.params.get(name)
        if value is None or depth >= _MAX_SUBST_DEPTH:
            return value

        def repl(inner: re.Match[str]) -> str:
            got = self._lookup(inner, base_dir, depth + 1)
            return inner.group(0) if got is None else got

        expanded = _REFERENCE.sub(repl, value)
        if len(expanded) > _MAX_EXPANSION:
            self._overflow = True
            return ""
        return expanded

    def _tokenize(
        self, text: str, origin: list[int], filename: str, lineno: int, physical: str
    ) -> None:
        """Split on whitespace; braces outside quotes are their own statements."""
        group: list[Token] = []
        stmts = self.result.stmts

        def flush() -> None:
            if group:
                stmts.append(Stmt(tuple(group), text))
                group.clear()

        def make(word: str, start: int, end: int, quoted: bool) -> Token:
            loc = SourceLoc(filename, lineno, origin[start] + 1)
            return Token(word, loc, physical, quoted, start, end)

        i, n = 0, len(text)
        while i < n:
            ch = text[i]
            if ch.isspace():
                i += 1
                continue
            if ch in "{}":
                flush()
                stmts.append(Stmt((make(ch, i, i + 1, False),), text))
                i += 1
                continue
            start, chars, quoted, in_quote = i, [], False, False
            while i < n:
                ch = text[i]
                if ch == '"':
                    quoted, in_quote = True, not in_quote
                elif in_quote:
                    # Runs of plain characters in one step: a 64 KiB word must not
                    # cost 64 Ki trips round this loop.
                    end = text.find('"', i)
                    end = n if end < 0 else end
                    chars.append(text[i:end])
                    i = end
                    continue
                elif (run := _PLAIN_RUN.match(text, i)) is not None:
                    chars.append(run.group())
                    i = run.end()
                    continue
                elif ch.isspace() or ch in "{}":
                    break
                elif ch == "\\" and i + 1 < n and text[i + 1] in "#!":
                    # keepalived: `\#` and `\!` outside quotes are literal characters.
                    chars.append(text[i + 1])
                    i += 1
                else:
                    chars.append(ch)
                i += 1
            group.append(make("".join(chars), start, i, quoted))
        flush()

    # -- include -----------------------------------------------------------

    def _include(
        self,
        kind: str,
        body: str,
        filename: str,
        lineno: int,
        physical: str,
        base_dir: str,
        depth: int,
    ) -> None:
        kw_at = body.index(kind)
        rest = body[kw_at + len(kind) :]
        pattern = rest.strip()
        col = kw_at + len(kind) + (len(rest) - len(rest.lstrip())) + 1

        def report(msg: str) -> None:
            self.error(filename, lineno, col, msg, physical)

        if not pattern:
            self.error(filename, lineno, kw_at + 1, f"{kind} needs a file pattern", physical)
            return
        if len(pattern) >= 2 and pattern[0] == pattern[-1] == '"':
            pattern = pattern[1:-1]
        checks = set(kind[len("include") :])
        if "a" in checks:
            checks = {"r", "m", "w", "b"}
        if pattern.count("{") > MAX_BRACES:
            report(f"{kind}: more than {MAX_BRACES} braces in the pattern; line ignored")
            return
        alternatives: list[str] = []
        for alternative in _brace_expand(pattern):
            alternatives.append(alternative)
            if len(alternatives) > MAX_BRACE_PATTERNS:
                report(
                    f"{kind}: '{_short(pattern)}' expands to more than {MAX_BRACE_PATTERNS}"
                    " patterns; line ignored"
                )
                return
        if self._budget is None:
            self._budget = _GlobBudget(time.monotonic() + INCLUDE_TIME_BUDGET, MAX_GLOB_ENTRIES)
        matches: list[str] = []
        for alternative in alternatives:
            full = (
                alternative if os.path.isabs(alternative) else os.path.join(base_dir, alternative)
            )
            try:
                found = sorted(_glob(full, self._budget))
            except _BudgetSpent as exc:
                self._stopped = True
                report(f"{kind}: matching '{_short(pattern)}' {exc}; stopped reading")
                return
            if not found and "b" in checks and alternative != pattern:
                report(f"{kind}: brace alternative '{_short(alternative)}' matches no file")
            matches.extend(found)
        if not matches:
            if "m" in checks:
                report(f"{kind}: '{_short(pattern)}' matches no file")
            elif "w" in checks and _GLOB_MAGIC.search(pattern):
                report(f"{kind}: wildcard '{_short(pattern)}' matches no file")
            return
        for path in matches:
            if self._stopped:
                return
            if self._included >= MAX_INCLUDE_FILES:
                self._stopped = True
                report(f"{kind}: more than {MAX_INCLUDE_FILES} files included in all; stopped")
                return
            self._include_one(kind, path, checks, (filename, lineno, col, physical), depth)

    def _include_one(
        self,
        kind: str,
        path: str,
        checks: set[str],
        where: tuple[str, int, int, str],
        depth: int,
    ) -> None:
        file, line, col, src = where
        real = os.path.realpath(path)
        if real in (os.path.realpath(p) for p in self._stack):
            chain = " -> ".join([*self._stack, path])
            self.error(file, line, col, f"include cycle: {chain}", src)
            return
        if depth + 1 > MAX_INCLUDE_DEPTH:
            self.error(file, line, col, f"includes nested deeper than {MAX_INCLUDE_DEPTH}", src)
            return
        if not os.access(path, os.R_OK) or not os.path.isfile(path):
            if "r" in checks:
                self._read(path, where)  # reports the reason as an error
            else:
                self.warn(file, line, col, f"{kind}: cannot read '{path}'; skipped", src)
            return
        text = self._read(path, where)
        if text is None:
            return
        self._included += 1
        self.result.files.append(path)
        self._stack.append(path)
        self._lex(text, path, os.path.dirname(path), depth + 1)
        self._stack.pop()


def _decomment(line: str) -> tuple[str, int]:
    """Cut at the first `!`/`#` outside double quotes (`\\#`, `\\!` escape).

    Returns the kept text and, for an unterminated quote, the 1-based column
    of the opening quote (else 0).
    """
    if '"' not in line and "\\" not in line:
        cut = _COMMENT_START.search(line)  # the common case, without a Python loop
        return (line[: cut.start()] if cut else line), 0
    in_quote = False
    quote_col = 0
    i = 0
    while i < len(line):
        ch = line[i]
        if ch == '"':
            in_quote = not in_quote
            quote_col = i + 1
        elif not in_quote:
            if ch == "\\" and i + 1 < len(line) and line[i + 1] in "#!":
                i += 2
                continue
            if ch in "#!":
                return line[:i], 0
        i += 1
    return line, quote_col if in_quote else 0


def _brace_expand(pattern: str) -> Iterator[str]:
    """Shell-style `{a,b}` expansion, as glob(GLOB_BRACE) does for includes.

    Lazy, so a caller can stop after a bounded number: `{a,b}` twenty times
    is a million patterns.
    """
    depth = 0
    start = -1
    for i, ch in enumerate(pattern):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth:
            depth -= 1
            if depth == 0:
                inner = pattern[start + 1 : i]
                parts = _split_top_commas(inner)
                if len(parts) < 2:
                    continue
                head, tail = pattern[:start], pattern[i + 1 :]
                for part in parts:
                    yield from _brace_expand(head + part + tail)
                return
    yield pattern


def _split_top_commas(text: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        cur.append(ch)
    parts.append("".join(cur))
    return parts


class _BudgetSpent(Exception):
    """Include globbing ran out of time or directory entries."""


class _GlobBudget:
    """What include globbing may still spend: a deadline and a count of entries."""

    def __init__(self, deadline: float, entries: int) -> None:
        self.deadline = deadline
        self.entries = entries

    def spend(self, entries: int) -> None:
        self.entries -= entries
        if self.entries < 0:
            raise _BudgetSpent(f"looked at more than {MAX_GLOB_ENTRIES} directory entries")
        if time.monotonic() > self.deadline:
            raise _BudgetSpent(f"took longer than {INCLUDE_TIME_BUDGET:g} s")


def _glob(pattern: str, budget: _GlobBudget) -> list[str]:
    """`glob.glob(pattern)` (no `**`), charging every stat and entry to `budget`.

    The standard glob cannot be interrupted: `/*/*/*/*/*` walks a whole tree
    before returning. Like it, a `*` does not match a leading dot.
    """
    if not _GLOB_MAGIC.search(pattern):
        budget.spend(1)
        return [pattern] if os.path.lexists(pattern) else []
    head, tail = os.path.split(pattern)
    dirs = _glob(head, budget) if head and _GLOB_MAGIC.search(head) else [head]
    out: list[str] = []
    for d in dirs:
        if not _GLOB_MAGIC.search(tail):
            path = os.path.join(d, tail)
            budget.spend(1)
            if os.path.lexists(path):
                out.append(path)
            continue
        names: list[str] = []
        try:
            with os.scandir(d or os.curdir) as it:
                for entry in it:
                    budget.spend(1)
                    names.append(entry.name)
        except OSError:
            continue  # not a directory, or unreadable: no match, as glob()
        if not tail.startswith("."):
            names = [n for n in names if not n.startswith(".")]
        out.extend(os.path.join(d, n) for n in fnmatch.filter(names, tail))
    return out


def _short(text: str) -> str:
    """`text` cut for a message (an include pattern may be 64 KiB long)."""
    return text if len(text) <= _SHOWN_CHARS else text[:_SHOWN_CHARS] + "..."


def lex_path(path: str | Path, config_id: str | None = None) -> LexResult:
    """Lex a file and its includes."""
    return Lexer(config_id).lex_file(str(path))


def lex_text(text: str, filename: str = "<string>", config_id: str | None = None) -> LexResult:
    """Lex text; includes resolve against the current directory."""
    return Lexer(config_id).lex_text(text, filename, "")
