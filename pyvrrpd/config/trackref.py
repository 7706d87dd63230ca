"""One tracker reference entry, `NAME [weight W [reverse|noreverse]]`, as written.

Owns: reading the lines of an instance's (or sync group's) `track_process`,
`track_file`, `track_interface`, `track_script` and `track_http` blocks
into a `RefDraft` (name token, weight and reverse, None where not written),
with the per-kind differences as parameters: the accepted weight range,
whether `noreverse` is known, whether a bad word after the weight is an
error or a warning, and each kind's message texts (tests and the
`keepalived -t` parity tests compare them, so they stay word for word).

Two grammars, as keepalived has them:
- positional (`Positional`: track_process, track_file, track_interface;
  keepalived alloc_track_process/_file/_if): `weight W` must come first,
  then one option word;
- free words (`read_words`: track_script, track_http; keepalived
  alloc_track_script): `weight W`, `reverse` and `noreverse` in any order,
  anything else warned about and ignored.

Must not: know any block (vrrp_track_process, ...) or resolve a reference
against one; the per-kind modules do that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .lexer import Stmt, Token
from .values import Reporter, parse_int

TRACK_WEIGHT_MAX = 253  # the largest weight that reaches the core (vrrp_track.c)


@dataclass(slots=True)
class RefDraft:
    """One reference entry as written; None: the block's own value."""

    name: Token
    weight: int | None = None
    reverse: bool | None = None


def coerce_weight(rep: Reporter, kind: str, at: Token, value: int) -> int:
    """+-254 taken as +-253 with a warning (keepalived's script/interface range)."""
    if abs(value) <= TRACK_WEIGHT_MAX:
        return value
    coerced = TRACK_WEIGHT_MAX if value > 0 else -TRACK_WEIGHT_MAX
    rep.warn(at, f"{kind} weight {value} is out of range; using {coerced}")
    return coerced


def checked_weight(
    limit: int, message: Callable[[str, str], str]
) -> Callable[[Reporter, Stmt], int | None]:
    """A `Positional.weight` reader: the word after `weight` an integer
    -limit..limit, else the error `message(entry name, word)`."""

    def read(rep: Reporter, s: Stmt) -> int | None:
        tok = s.tokens[2]
        value = parse_int(tok.text)
        if value is None or not -limit <= value <= limit:
            rep.error(tok, message(s.keyword.text, tok.text))
            return None
        return value

    return read


@dataclass(frozen=True, slots=True)
class Positional:
    """A kind's rules for `NAME [weight W [OPTION]]` (weight first)."""

    kind: str  # the block keyword, first word of most messages
    span: str  # the range named by "weight needs a value ..."
    # Reads words[2] (present) as the weight, reporting its own error: None.
    weight: Callable[[Reporter, Stmt], int | None]
    options: tuple[str, ...]  # the words accepted after the weight
    bad_option: Callable[[str, str], str]  # (entry name, word) -> message
    bad_option_fatal: bool = False  # an error dropping the entry, else a warning

    def read(self, rep: Reporter, s: Stmt) -> RefDraft | None:
        """The entry on line `s`, or None when it is refused (reported)."""
        name = s.keyword.text
        words = s.tokens
        ref = RefDraft(s.keyword)
        if len(words) == 1:
            return ref
        if words[1].text != "weight":
            # keepalived drops the whole entry with an error, which silently
            # untracks the object: refuse instead.
            rep.error(words[1], f"{self.kind} {name}: expected 'weight W', got '{words[1].text}'")
            return None
        if len(words) == 2:
            rep.error(words[1], f"{self.kind} {name}: weight needs a value {self.span}")
            return None
        weight = self.weight(rep, s)
        if weight is None:
            return None
        ref.weight = weight
        if len(words) > 3:
            opt = words[3]
            if opt.text in self.options:
                ref.reverse = opt.text == "reverse"
            elif self.bad_option_fatal:
                rep.error(opt, self.bad_option(name, opt.text))
                return None
            else:
                rep.warn(opt, self.bad_option(name, opt.text))
            if len(words) > 4:
                rep.warn(words[4], f"unexpected extra word '{words[4].text}'; ignored")
        return ref

    def read_block(self, rep: Reporter, lines: Iterable[Stmt], refs: list[RefDraft]) -> None:
        """Every entry of a block appended to `refs`; a name listed twice warned and dropped."""
        for s in lines:
            ref = self.read(rep, s)
            if ref is None:
                continue
            if any(r.name.text == ref.name.text for r in refs):
                # keepalived: "(%s) duplicate track_process %s - ignoring" (and alike)
                rep.warn(s.keyword, f"duplicate {self.kind} {ref.name.text}; ignored")
                continue
            refs.append(ref)


def read_words(rep: Reporter, s: Stmt, kind: str, limit: int) -> RefDraft:
    """`NAME [weight W] [reverse|noreverse]`, words in any order; weights
    in -limit..limit, those beyond +-253 coerced (coerce_weight)."""
    ref = RefDraft(s.keyword)
    words = s.tokens
    i = 1
    while i < len(words):
        w = words[i]
        if w.text == "weight":
            i += 1
            val = words[i] if i < len(words) else None
            num = parse_int(val.text) if val is not None else None
            if val is None or num is None or not -limit <= num <= limit:
                got = f", got '{val.text}'" if val is not None else ""
                rep.error(val or w, f"{kind} weight must be an integer {-limit}..{limit}{got}")
            else:
                ref.weight = coerce_weight(rep, kind, val, num)
        elif w.text in ("reverse", "noreverse"):
            ref.reverse = w.text == "reverse"
        else:
            rep.warn(w, f"unexpected word '{w.text}' in {kind} entry; ignored")
        i += 1
    return ref


def read_words_block(
    rep: Reporter, lines: Iterable[Stmt], refs: list[RefDraft], kind: str, limit: int
) -> None:
    """Every `read_words` entry appended to `refs`; a name listed twice warned and dropped."""
    listed = {r.name.text for r in refs}
    for s in lines:
        ref = read_words(rep, s, kind, limit)
        if ref.name.text in listed:
            rep.warn(ref.name, f"{kind} '{ref.name.text}' is listed twice; ignored")
            continue
        listed.add(ref.name.text)
        refs.append(ref)


__all__ = [
    "TRACK_WEIGHT_MAX",
    "Positional",
    "RefDraft",
    "checked_weight",
    "coerce_weight",
    "read_words",
    "read_words_block",
]
