"""One line of `virtual_ipaddress { }` into a `VirtualIP`.

Owns: the per-address syntax (keepalived.md 1.9)
`IP[/prefix] [dev IF] [brd IP|+|-] [scope S] [label L]`, plus the flags we
accept and ignore. Must not decide where the address goes (the daemon does).
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

from . import keywords
from .lexer import Stmt
from .model import VirtualIP
from .values import Reporter

SCOPES = ("global", "site", "link", "host", "nowhere")


def parse_vip(rep: Reporter, stmt: Stmt, block: str) -> VirtualIP | None:
    """Parse one address line of `block`; None (with an error) if unusable."""
    tok = stmt.keyword
    addr_text, _, prefix_text = tok.text.partition("/")
    if ":" in addr_text:
        # keepalived picks the family from a ':' in the address (1.9).
        rep.error(tok, "IPv6 virtual addresses need VRRPv3, not supported yet")
        return None
    try:
        parsed = ip_address(addr_text)
    except ValueError:
        rep.error(tok, f"{block}: '{tok.text}' is not an IPv4 address[/prefix]")
        return None
    assert isinstance(parsed, IPv4Address)
    ok = True
    prefixlen = 32
    if "/" in tok.text:
        if prefix_text.isdigit() and 0 <= int(prefix_text) <= 32:
            prefixlen = int(prefix_text)
        else:
            rep.error(tok, f"{block}: prefix length must be an integer 0..32, got '{prefix_text}'")
            ok = False

    dev: str | None = None
    brd: str | None = None
    scope = "global"
    label: str | None = None
    use_vmac = False
    words = stmt.tokens
    i = 1
    while i < len(words):
        word = words[i]
        opt = word.text
        if opt in ("dev", "brd", "broadcast", "scope", "label"):
            if i + 1 >= len(words):
                rep.error(word, f"{block}: '{opt}' needs a value")
                ok = False
                break
            val = words[i + 1]
            i += 2
            if opt == "dev":
                dev = val.text
            elif opt == "label":
                label = val.text
            elif opt == "scope":
                if val.text in SCOPES:
                    scope = val.text
                else:
                    rep.error(
                        val, f"{block}: scope must be one of {'|'.join(SCOPES)}, got '{val.text}'"
                    )
                    ok = False
            else:
                if val.text in ("+", "-"):
                    brd = val.text
                else:
                    try:
                        brd = str(IPv4Address(val.text))
                    except ValueError:
                        rep.error(
                            val, f"{block}: brd must be an IPv4 address, + or -, got '{val.text}'"
                        )
                        ok = False
            continue
        if opt == "use_vmac":
            # On a virtual-MAC interface of its device (config/vmac.py).
            use_vmac = True
            i += 1
            continue
        # Not implemented here: refused (error), no effect (warning) or unknown.
        if keywords.classify_unhandled(rep, word, keywords.VIP) is not None:
            i += 1 + keywords.VIP_OPTION_ARGS.get(opt, 0)
            continue
        rep.warn(word, f"{block}: unknown option '{opt}' for address {tok.text}; ignored")
        i += 1
    if not ok:
        return None
    return VirtualIP(
        parsed, prefixlen, dev=dev, broadcast=brd, scope=scope, label=label, use_vmac=use_vmac
    )
