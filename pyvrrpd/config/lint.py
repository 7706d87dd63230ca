"""The keyword compatibility table: every keyword the reader knows, with its class.

Owns: probing the reader for the class it gives each keyword (a handler
anywhere = implemented, whatever config/keywords.py lists; so a feature
that registers its handler is counted without editing a list), the
consistency checks the test suite runs on the tables, and the README's
"Keyword classes" table, rendered from the probe. Regenerate it with
`python -m pyvrrpd.config.lint --write README.md`.
Must not: touch the network or the file system (except `--write`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import keywords as kw
from . import parser, syncgroup
from .instance import _HANDLERS as INSTANCE_HANDLERS
from .model import ConfigError, Diagnostic
from .parser import parse_text

IMPLEMENTED = "implemented"
REFUSED = "refused"
NO_EFFECT = "no effect"
UNKNOWN = "unknown"

BLOCKS = (kw.TOP, kw.GLOBAL, kw.INSTANCE, kw.SCRIPT, kw.VIP, kw.SYNC)
BEGIN = "<!-- keyword-table:begin (python -m pyvrrpd.config.lint --write README.md) -->"
END = "<!-- keyword-table:end -->"

# The statement each probe wraps the keyword in, and the (line, col) it lands at.
_PROBES: dict[str, tuple[str, int, int]] = {
    kw.TOP: ("{w}\n", 1, 1),
    kw.GLOBAL: ("global_defs {{\n{w}\n}}\n", 2, 1),
    kw.INSTANCE: ("vrrp_instance V {{\n{w}\n}}\n", 2, 1),
    kw.SCRIPT: ("vrrp_script S {{\n{w}\n}}\n", 2, 1),
    kw.VIP: ("vrrp_instance V {{\nvirtual_ipaddress {{\n192.0.2.10 {w}\n}}\n}}\n", 3, 12),
    kw.SYNC: ("vrrp_sync_group G {{\n{w}\n}}\n", 2, 1),
}


@dataclass(frozen=True, slots=True)
class Row:
    block: str
    keyword: str
    klass: str
    reason: str
    in_227: bool  # keepalived 2.2.7 knows it in this block


def probe(block: str, word: str) -> str:
    """The class the reader gives `word` in `block`, read from its diagnostics."""
    template, line, col = _PROBES[block]
    text = template.format(w=word)
    diagnostics: tuple[Diagnostic, ...]
    try:
        diagnostics = parse_text(text, "probe.conf").warnings
    except ConfigError as exc:
        diagnostics = exc.diagnostics
    for d in diagnostics:
        if (d.loc.line, d.loc.col) != (line, col):
            continue
        if word in kw.REFUSED.get(block, {}) and d.message == kw.refused_message(block, word):
            return REFUSED
        if word in kw.NO_EFFECT.get(block, {}) and d.message == kw.no_effect_message(block, word):
            return NO_EFFECT
        if d.message.startswith(("unknown keyword '", f"{block}: unknown option '")):
            return UNKNOWN
    return IMPLEMENTED


def handler_keywords(block: str) -> frozenset[str]:
    """The keywords the reader's handler tables name for `block` (hints and dispatch)."""
    if block == kw.TOP:
        return parser.TOP_KEYWORDS
    if block == kw.GLOBAL:
        return parser.GLOBAL_KEYWORDS | {"vrrp_version"}
    if block == kw.INSTANCE:
        return frozenset(INSTANCE_HANDLERS) | {"version"}
    if block == kw.SCRIPT:
        return parser.SCRIPT_KEYWORDS
    if block == kw.SYNC:
        return syncgroup.KEYWORDS - syncgroup.REFUSED_WORDS
    return frozenset({"dev", "brd", "broadcast", "scope", "label"})


def universe(block: str) -> frozenset[str]:
    """Every keyword the reader knows in `block`: keepalived's, the tables', the handlers'."""
    return (
        kw.KEEPALIVED_227.get(block, frozenset())
        | frozenset(kw.REFUSED.get(block, {}))
        | frozenset(kw.NO_EFFECT.get(block, {}))
        | handler_keywords(block)
    )


def rows() -> list[Row]:
    out: list[Row] = []
    for block in BLOCKS:
        known = kw.KEEPALIVED_227.get(block, frozenset())
        for word in sorted(universe(block)):
            klass = probe(block, word)
            reason = ""
            if klass == REFUSED:
                reason = kw.REFUSED[block][word]
            elif klass == NO_EFFECT:
                reason = kw.NO_EFFECT[block][word]
            out.append(Row(block, word, klass, reason, word in known))
    return out


def problems(table: Iterable[Row] | None = None) -> list[str]:
    """What is wrong with the classes: keywords in no class or in two."""
    found: list[str] = []
    for r in rows() if table is None else table:
        listed = [
            name
            for name, tab in (("REFUSED", kw.REFUSED), ("NO_EFFECT", kw.NO_EFFECT))
            if r.keyword in tab.get(r.block, {})
        ]
        where = f"{r.block}: '{r.keyword}'"
        if r.klass == UNKNOWN:
            found.append(f"{where} is in no class (no handler, not in REFUSED or NO_EFFECT)")
        if len(listed) > 1:
            found.append(f"{where} is in both REFUSED and NO_EFFECT")
        if r.klass == IMPLEMENTED and listed:
            found.append(
                f"{where} has a handler but is still listed in keywords.{listed[0]}: remove it"
            )
    return found


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def table_markdown(table: Iterable[Row] | None = None) -> str:
    """The README section between BEGIN and END, markers excluded."""
    by_block: dict[str, list[Row]] = {}
    for r in rows() if table is None else table:
        by_block.setdefault(r.block, []).append(r)
    titles = {
        kw.TOP: "Top level",
        kw.GLOBAL: "`global_defs`",
        kw.INSTANCE: "`vrrp_instance`",
        kw.SCRIPT: "`vrrp_script`",
        kw.VIP: "Per-address options of `virtual_ipaddress`",
        kw.SYNC: "`vrrp_sync_group`",
    }
    lines: list[str] = []
    for block in BLOCKS:
        got = by_block.get(block, [])
        counts = {c: sum(1 for r in got if r.klass == c) for c in (IMPLEMENTED, REFUSED, NO_EFFECT)}
        lines += [
            "",
            f"#### {titles[block]} ({counts[IMPLEMENTED]} implemented, "
            f"{counts[REFUSED]} refused, {counts[NO_EFFECT]} without VRRP effect)",
            "",
            "| Keyword | Class | Reason |",
            "|---|---|---|",
        ]
        for r in got:
            note = r.reason
            if r.keyword in kw.PYVRRPD_ONLY.get(r.block, ()):
                note = "pyvrrpd-only: keepalived reports it as an unknown keyword"
            elif not r.in_227 and r.klass == IMPLEMENTED:
                note = "not a keepalived 2.2.7 keyword here (pyvrrpd or a later keepalived)"
            lines.append(f"| `{_md(r.keyword)}` | {r.klass} | {_md(note)} |")
    return "\n".join(lines) + "\n"


def replace_section(readme: str, section: str) -> str:
    start = readme.index(BEGIN) + len(BEGIN)
    end = readme.index(END)
    return readme[:start] + "\n" + section + readme[end:]


def readme_section(readme: str) -> str:
    start = readme.index(BEGIN) + len(BEGIN)
    return readme[start : readme.index(END)].removeprefix("\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pyvrrpd.config.lint", description=__doc__)
    ap.add_argument("--write", metavar="README", help="rewrite the table in this file")
    ap.add_argument("--check", action="store_true", help="list keywords in no class or two")
    args = ap.parse_args(argv)
    table = rows()
    if args.check:
        bad = problems(table)
        for line in bad:
            print(line)
        return 1 if bad else 0
    section = table_markdown(table)
    if args.write:
        path = Path(args.write)
        path.write_text(replace_section(path.read_text(encoding="utf-8"), section), "utf-8")
    else:
        sys.stdout.write(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
