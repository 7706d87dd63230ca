"""keepalived.conf statements into the typed `Config` (the public entry points).

Owns: the top-level blocks, `global_defs` (keepalived.md 1.3), `vrrp_script`
(1.4), resolving defaults that span blocks (global garp values, track_script
references, priority/state defaults, nopreempt rules from 2.1/2.5) and the
cross-checks between instances. `load_config` / `parse_text` either return a
`Config` (warnings inside) or raise `ConfigError` carrying every diagnostic.
Must not: raise anything else for bad input, or touch the network.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from . import (
    hostside,
    keywords,
    notify,
    sched,
    strict,
    syncgroup,
    trackfile,
    trackhttp,
    tracking,
    trackprocess,
    unicast,
    vmac,
)
from . import routes as routecfg
from .instance import (
    MAX_ADVERT_VIPS,
    InstanceDraft,
    garp_lower_prio_repeat,
    garp_repeat,
    read_instance,
)
from .keywords import unknown_keyword
from .lexer import Lexer, LexResult, Stmt, Token
from .model import (
    Config,
    ConfigError,
    Diagnostic,
    GlobalDefs,
    Severity,
    TrackScriptRef,
    VirtualIP,
    VrrpInstance,
    VrrpScript,
    VrrpTrackProcess,
)
from .values import (
    Cursor,
    Reporter,
    bool_value,
    decimal_value,
    extra_args,
    flag,
    int_value,
    need_arg,
    str_value,
)

TIMER_MAX = 4294.0  # keepalived's range for second-valued timers
MAX_DIAGNOSTICS = 200  # listed in full; the rest are counted in one line

# What each block implements, for the "did you mean" hint of unknown keywords.
TOP_KEYWORDS = frozenset(
    {"global_defs", "vrrp_script", "vrrp_instance", "instance", "vrrp_sync_group"}
)
TOP_KEYWORDS = TOP_KEYWORDS | routecfg.TOP_KEYWORDS  # static_* (config/routes.py)
TOP_KEYWORDS = TOP_KEYWORDS | trackfile.TOP_KEYWORDS  # track_file (config/trackfile.py)
TOP_KEYWORDS = TOP_KEYWORDS | {trackhttp.TOP_KEYWORD}  # pyvrrpd-only (config/trackhttp.py)
TOP_KEYWORDS = TOP_KEYWORDS | {trackprocess.TOP_KEYWORD}  # config/trackprocess.py
# global_defs keywords read by their feature's module (the sets are disjoint).
_FEATURE_GLOBALS: dict[str, Callable[[Reporter, Stmt, dict[str, object]], None]] = {
    word: read
    for words, read in (
        (hostside.GLOBAL_KEYWORDS, hostside.read_global),
        (strict.GLOBAL_KEYWORDS, strict.read_global),
        (tracking.GLOBAL_KEYWORDS, tracking.read_global),
        (notify.GLOBAL_KEYWORDS, notify.read_global_keyword),
        (unicast.GLOBAL_KEYWORDS, unicast.read_global),
        (vmac.GLOBAL_KEYWORDS, vmac.read_global),
    )
    for word in words
}
GLOBAL_KEYWORDS = frozenset(
    {
        "router_id",
        "notification_email_from",
        "smtp_helo_name",
        "script_user",
        "enable_script_security",
        "data_use_instance",
        "vrrp_garp_master_delay",
        "vrrp_garp_master_refresh",
        "vrrp_garp_master_repeat",
        "vrrp_garp_master_refresh_repeat",
        "vrrp_garp_lower_prio_delay",
        "vrrp_garp_lower_prio_repeat",
        "vrrp_garp_interval",
        "vrrp_gna_interval",
        "vrrp_skip_check_adv_addr",
        "notification_email",
        "smtp_server",
        "smtp_connect_timeout",
        "smtp_alert",
        *sched.KEYWORDS,
        *_FEATURE_GLOBALS,
    }
)
SCRIPT_KEYWORDS = frozenset(
    {"script", "interval", "timeout", "weight", "rise", "fall", "user", "init_fail"}
)


def load_config(path: str | Path, *, config_id: str | None = None) -> Config:
    """Parse a keepalived.conf file and everything it includes.

    `config_id` selects `@id` lines (default: the short host name).
    Raises ConfigError, with every diagnostic, if there is any error.
    """
    lexed = Lexer(config_id).lex_file(str(path))
    return _build(lexed)


def parse_text(text: str, filename: str = "<string>", *, config_id: str | None = None) -> Config:
    """Parse configuration text; `filename` is used in messages only.

    Relative includes resolve against the current directory.
    """
    lexed = Lexer(config_id).lex_text(text, filename, "")
    return _build(lexed)


def _build(lexed: LexResult) -> Config:
    rep = Reporter(lexed.diagnostics)
    try:
        config = _Parser(rep).parse(lexed.stmts)
    except RecursionError:  # pragma: no cover - defensive; nothing here recurses deeply
        rep.error_at(lexed.stmts[0].keyword.loc, "configuration too deeply nested")
        config = Config()
    # Report in source order (files in the order they were read), like a compiler,
    # although cross-checks run after the whole file has been read.
    rank = {name: i for i, name in reversed(list(enumerate(lexed.files)))}
    diagnostics = tuple(
        sorted(rep.diagnostics, key=lambda d: (rank.get(d.loc.file, -1), d.loc.line, d.loc.col))
    )
    if len(diagnostics) > MAX_DIAGNOSTICS:
        # Like a compiler, stop listing: 65,000 stray '}' on one line would
        # otherwise print (and hold) 65,000 copies of that line.
        rest = diagnostics[MAX_DIAGNOSTICS:]
        n_err = sum(1 for d in rest if d.severity is Severity.ERROR)
        last = rest[-1]
        summary = Diagnostic(
            Severity.ERROR if n_err else Severity.WARNING,
            last.loc,
            f"{len(rest)} more diagnostics not shown ({n_err} errors)",
        )
        diagnostics = (*diagnostics[:MAX_DIAGNOSTICS], summary)
    if rep.has_errors:
        raise ConfigError(diagnostics, partial=config)
    # Absolute: a reload (shell/ops/reloader.py) reads the main file again after
    # the `keepalived` compat daemon has changed to / (cli/keepalived.py).
    files = tuple(os.path.abspath(f) for f in lexed.files)
    return replace(config, warnings=diagnostics, files=files)


class _Parser:
    def __init__(self, rep: Reporter) -> None:
        self.rep = rep
        self.globals: dict[str, object] = {}
        self.global_toks: dict[str, Token] = {}  # keyword token of some globals, for cross-checks
        self.scripts: list[VrrpScript] = []
        self.script_names: dict[str, Token] = {}
        self.drafts: list[InstanceDraft] = []
        self.sync_drafts: list[syncgroup.SyncGroupDraft] = []  # vrrp_sync_group
        self.statics: dict[str, list[Any]] = {}  # static_* blocks (config/routes.py)
        self.track_files: list[trackfile.TrackFileDraft] = []  # config/trackfile.py
        self.track_http = trackhttp.Blocks()  # vrrp_track_http (config/trackhttp.py)
        self.track_procs: list[VrrpTrackProcess] = []  # vrrp_track_process (config/trackprocess.py)
        self.track_proc_names: dict[str, Token] = {}

    # -- top level ---------------------------------------------------------

    def parse(self, stmts: list[Stmt]) -> Config:
        rep = self.rep
        top = Cursor(stmts, rep)
        while (stmt := top.next()) is not None:
            kw = stmt.keyword
            word = kw.text
            if kw.is_close:
                rep.error(kw, "extra '}' with no block open")
            elif kw.is_open:
                rep.error(kw, "unexpected '{' with no keyword before it")
                top.pos -= 1
                top.skip_optional_block(stmt)
            elif word == "global_defs":
                extra_args(rep, stmt, 0)
                body = top.block(stmt)
                if body is not None:
                    self._global_defs(body)
            elif word in ("vrrp_script", "vrrp_instance"):
                name = need_arg(rep, stmt, 1, "a name")
                extra_args(rep, stmt, 1)
                body = top.block(stmt)
                if body is None or name is None:
                    continue
                if word == "vrrp_script":
                    self._vrrp_script(name, body)
                else:
                    self.drafts.append(read_instance(rep, name, body))
            elif word == "vrrp_sync_group":
                syncgroup.read_top(rep, stmt, top, self.sync_drafts)
            elif word == trackhttp.TOP_KEYWORD:
                trackhttp.read_top(rep, stmt, top, self.track_http)  # pyvrrpd-only
            elif word == trackprocess.TOP_KEYWORD:
                trackprocess.read_top(rep, stmt, top, self.track_procs, self.track_proc_names)
            elif word == "instance":
                # Names the USR1 dump with data_use_instance (keepalived.md 4.1);
                # keepalived keeps the first and reports any other.
                name = need_arg(rep, stmt, 1, "a name")
                extra_args(rep, stmt, 1)
                if name is not None and "instance_name" in self.globals:
                    rep.warn(kw, f"duplicate instance definition '{name.text}'; ignored")
                elif name is not None:
                    self.globals["instance_name"] = name.text
            elif word in trackfile.TOP_KEYWORDS:
                trackfile.read_top(rep, stmt, top, self.track_files)
            elif word in routecfg.TOP_KEYWORDS:
                extra_args(rep, stmt, 0)
                routecfg.read_top(rep, stmt, top, self.statics)
            else:
                # No handler: refused, no effect or unknown (config/keywords.py).
                keywords.not_handled(rep, stmt, top, keywords.TOP, TOP_KEYWORDS)
        sched.check(self.rep, self.globals, self.global_toks)
        gd = GlobalDefs(**self.globals)  # type: ignore[arg-type]
        instances = self._resolve(gd)
        instances, sync_groups = syncgroup.resolve(rep, self.sync_drafts, instances, self.scripts)
        instances, sync_groups, track_files = trackfile.resolve(
            rep, self.track_files, self.drafts, self.sync_drafts, instances, sync_groups
        )
        instances, sync_groups = trackhttp.resolve(
            rep, self.track_http, self.drafts, self.sync_drafts, instances, sync_groups
        )
        instances, sync_groups = trackprocess.resolve(
            rep, tuple(self.track_procs), self.drafts, self.sync_drafts, instances, sync_groups
        )
        return Config(
            global_defs=gd,
            scripts=tuple(self.scripts),
            instances=instances,
            sync_groups=sync_groups,
            track_https=self.track_http.model(),
            track_processes=tuple(self.track_procs),
            track_files=track_files,
            **{k: tuple(v) for k, v in self.statics.items()},  # static_* (config/routes.py)
        )

    # -- global_defs -------------------------------------------------------

    def _global_defs(self, body: Cursor) -> None:
        rep, g = self.rep, self.globals
        while (stmt := body.next()) is not None:
            kw = stmt.keyword
            word = kw.text
            value: object = None
            if kw.is_open:
                rep.error(kw, "unexpected '{'")
                body.pos -= 1
                body.skip_optional_block(stmt)
                continue
            if word in ("router_id", "notification_email_from", "smtp_helo_name"):
                value = str_value(rep, stmt)
            elif word == "script_user":
                self._script_user(stmt)
                continue
            elif word in ("enable_script_security", "data_use_instance"):
                value = bool_value(rep, stmt)
            elif word in (
                "vrrp_garp_master_delay",
                "vrrp_garp_master_refresh",
                "vrrp_garp_lower_prio_delay",
            ):
                num = int_value(rep, stmt, 0, int(TIMER_MAX))
                value = None if num is None else float(num)
            elif word in ("vrrp_garp_master_repeat", "vrrp_garp_master_refresh_repeat"):
                value = garp_repeat(rep, stmt)
            elif word == "vrrp_garp_lower_prio_repeat":
                value = garp_lower_prio_repeat(rep, stmt)
            elif word in ("vrrp_garp_interval", "vrrp_gna_interval"):
                # Deliberate deviation: keepalived 2.2.7 rejects 0 ("outside range
                # [0.000001, 4294]") although its man page and shipped sample use 0
                # as the default. Real configs carry `vrrp_garp_interval 0`, and a
                # drop-in must accept them, so 0 (= no gap) is valid here.
                value = decimal_value(rep, stmt, 0, TIMER_MAX, " (seconds)")
            elif word == "vrrp_skip_check_adv_addr":
                value = bool_value(rep, stmt)
            elif word == "notification_email":
                self._emails(stmt, body)
                continue
            elif word == "smtp_server":
                self._smtp_server(stmt)
                continue
            elif word == "smtp_connect_timeout":
                value = int_value(rep, stmt, 1, 3600)
            elif word == "smtp_alert":
                value = bool_value(rep, stmt)
            elif (read := _FEATURE_GLOBALS.get(word)) is not None:
                read(rep, stmt, g)
                continue
            elif word in sched.KEYWORDS:
                sched.read(rep, stmt, g, self.global_toks)
                continue
            elif word == "vrrp_version":
                keywords.vrrp_version(rep, stmt)
                continue
            elif word == "vrrp_min_garp":
                keywords.vrrp_min_garp(rep, stmt, g)
                continue
            else:
                # No handler: refused, no effect or unknown (config/keywords.py).
                keywords.not_handled(rep, stmt, body, keywords.GLOBAL, GLOBAL_KEYWORDS)
                continue
            if value is not None:
                g[word] = value

    def _script_user(self, stmt: Stmt) -> None:
        user, group = _user_group(self.rep, stmt)
        if user is not None:
            self.globals["script_user"] = user
            self.globals["script_group"] = group

    def _emails(self, stmt: Stmt, body: Cursor) -> None:
        extra_args(self.rep, stmt, 0)
        inner = body.block(stmt)
        if inner is not None:
            emails = tuple(t.text for s in inner.lines() for t in s.tokens)
            self.globals["notification_email"] = emails

    def _smtp_server(self, stmt: Stmt) -> None:
        host = need_arg(self.rep, stmt, 1, "a host [port]")
        if host is None:
            return
        port = 25
        if len(stmt.tokens) > 2:
            got = int_value(self.rep, stmt, 1, 65535, index=2, what="smtp_server port")
            extra_args(self.rep, stmt, 2)
            if got is None:
                return
            port = got
        self.globals["smtp_server"] = host.text
        self.globals["smtp_port"] = port

    # -- vrrp_script -------------------------------------------------------

    def _vrrp_script(self, name: Token, body: Cursor) -> None:
        rep = self.rep
        argv: tuple[str, ...] | None = None
        fields: dict[str, object] = {}
        while (stmt := body.next()) is not None:
            kw = stmt.keyword
            word = kw.text
            if kw.is_open:
                rep.error(kw, "unexpected '{'")
                body.pos -= 1
                body.skip_optional_block(stmt)
            elif word == "script":
                argv = _script_argv(rep, stmt)
            elif word in ("interval", "timeout"):
                value = decimal_value(rep, stmt, 0, TIMER_MAX, " (seconds)")
                if value == 0:
                    rep.warn(stmt.tokens[1], f"{word} must be greater than 0; using 1")
                    value = 1.0
                if value is not None:
                    fields[word] = value
            elif word == "weight":
                self._script_weight(stmt, fields)
            elif word in ("rise", "fall"):
                count = int_value(rep, stmt, 1, 2**31 - 1)
                if count is not None:
                    fields[word] = count
            elif word == "user":
                user, group = _user_group(rep, stmt)
                if user is not None:
                    fields["user"], fields["group"] = user, group
            elif word == "init_fail":
                fields["init_fail"] = flag(rep, stmt)
            else:
                rep.warn(kw, unknown_keyword(word, "vrrp_script", SCRIPT_KEYWORDS))
                body.skip_optional_block(stmt)
        if argv is None:
            rep.error(name, f"vrrp_script {name.text} has no 'script' command")
            return
        if name.text in self.script_names:
            first = self.script_names[name.text].loc
            rep.error(name, f"duplicate vrrp_script '{name.text}' (first defined at {first})")
            return
        self.script_names[name.text] = name
        self.scripts.append(VrrpScript(name.text, argv, loc=name.loc, **fields))  # type: ignore[arg-type]

    def _script_weight(self, stmt: Stmt, fields: dict[str, object]) -> None:
        value = int_value(self.rep, stmt, -253, 253, check_extra=False)
        if len(stmt.tokens) > 2:
            word = stmt.tokens[2]
            if word.text in ("reverse", "noreverse"):
                fields["weight_reverse"] = word.text == "reverse"
                extra_args(self.rep, stmt, 2)
            else:
                self.rep.warn(
                    word, f"expected 'reverse' after the weight, got '{word.text}'; ignored"
                )
        if value is not None:
            fields["weight"] = value

    # -- resolution and cross-checks ----------------------------------------

    def _resolve(self, gd: GlobalDefs) -> tuple[VrrpInstance, ...]:
        rep = self.rep
        out: list[VrrpInstance] = []
        names: dict[str, Token] = {}
        vrids: dict[tuple[str, int], Token] = {}
        for d in self.drafts:
            name = d.name.text
            ok = True
            # vrrp_strict / strict_mode and accept mode (config/strict.py)
            ok = strict.before_finish(rep, d, bool(gd.vrrp_strict)) and ok
            if name in names:
                rep.error(
                    d.name, f"duplicate vrrp_instance '{name}' (first defined at {names[name].loc})"
                )
                ok = False
            else:
                names[name] = d.name
            if d.interface is None and not unicast.interface_optional(d):
                rep.error(d.name, f"vrrp_instance {name} has no 'interface'")
                ok = False
            if d.vrid is None:
                if d.vrid_tok is None:
                    rep.error(d.name, f"vrrp_instance {name} has no 'virtual_router_id' (1..255)")
                ok = False
            elif d.vrid_tok is not None and (where := _vrid_place(d)) is not None:
                # Omitted interfaces sharing a unicast_src_ip share the interface
                # found for it; the daemon checks the rest once they are resolved.
                key = (where, d.vrid)
                if key in vrids:
                    rep.error(
                        d.vrid_tok,
                        f"virtual_router_id {d.vrid} on {where} is already used by "
                        f"vrrp_instance {vrids[key].text} ({vrids[key].loc})",
                    )
                    ok = False
                else:
                    vrids[key] = d.name
            if d.auth_type is not None and d.auth_pass is None and d.auth_type_tok is not None:
                rep.error(d.auth_type_tok, "auth_type is set but auth_pass is missing")
                ok = False
            inst = self._finish(d, gd)
            if inst is not None:
                inst = strict.after_finish(rep, d.name, inst)
            if inst is not None:
                inst = hostside.resolve(inst)
            if ok and inst is not None:
                out.append(inst)
        return tuple(out)

    def _finish(self, d: InstanceDraft, gd: GlobalDefs) -> VrrpInstance | None:
        rep = self.rep
        # keepalived.md 1.8: the defaults of state and priority depend on each other.
        priority = d.priority
        state = d.state
        if priority is None:
            priority = 255 if state == "MASTER" else 100
        if state is None:
            state = "MASTER" if priority == 255 else "BACKUP"
        nopreempt = d.nopreempt_tok is not None
        if d.nopreempt_tok is not None and (priority == 255 or state == "MASTER"):
            why = "priority 255" if priority == 255 else "initial state MASTER"
            rep.warn(d.nopreempt_tok, f"nopreempt does not work with {why}; clearing it")
            nopreempt = False
        preempt_delay = d.preempt_delay
        if d.preempt_delay_tok is not None and preempt_delay and (nopreempt or state == "MASTER"):
            why = "nopreempt" if nopreempt else "initial state MASTER"
            rep.warn(d.preempt_delay_tok, f"preempt_delay does not work with {why}; clearing it")
            preempt_delay = 0.0
        auth_pass = d.auth_pass or b""
        auth_type = d.auth_type
        if auth_type is None and d.auth_pass_tok is not None:
            rep.warn(d.auth_pass_tok, "auth_pass without auth_type is ignored")
            auth_pass = b""
        tracks: list[TrackScriptRef] = []
        for ref in d.track:
            if ref.name.text not in self.script_names:
                rep.warn(
                    ref.name,
                    f"track_script '{ref.name.text}' is not a defined vrrp_script; ignored",
                )
                continue
            tracks.append(TrackScriptRef(ref.name.text, ref.weight, ref.reverse))
        if (d.interface is None and not unicast.interface_optional(d)) or d.vrid is None:
            return None
        vips, excluded = self._fit_vips(d)
        return VrrpInstance(
            name=d.name.text,
            interface=d.interface or "",  # "": found from unicast_src_ip at start
            virtual_router_id=d.vrid,
            priority=priority,
            state=state,
            advert_int=d.advert_int,
            nopreempt=nopreempt,
            preempt_delay=preempt_delay,
            auth_type=auth_type,
            auth_pass=auth_pass if auth_type else b"",
            virtual_ipaddress=vips,
            virtual_ipaddress_excluded=excluded,
            track_script=tuple(tracks),
            garp_master_delay=_pick(d.garp_master_delay, gd.vrrp_garp_master_delay),
            garp_master_repeat=_pick(d.garp_master_repeat, gd.vrrp_garp_master_repeat),
            garp_master_refresh=_pick(d.garp_master_refresh, gd.vrrp_garp_master_refresh),
            garp_master_refresh_repeat=_pick(
                d.garp_master_refresh_repeat, gd.vrrp_garp_master_refresh_repeat
            ),
            skip_check_adv_addr=d.skip_check_adv_addr or gd.vrrp_skip_check_adv_addr,
            **tracking.instance_fields(d.tracking, gd),
            notify=d.notify,
            strict_mode=bool(d.strict_mode),
            accept=d.accept is not False,
            virtual_routes=tuple(d.virtual_routes),
            virtual_rules=tuple(d.virtual_rules),
            track_src_ip=d.track_src_ip,
            vmac=vmac.resolve(rep, d),
            **unicast.resolve(rep, d, gd),  # type: ignore[arg-type]
            loc=d.name.loc,
            # keepalived: instance value, else the global lower_prio value, else
            # the *global* master value (not this instance's garp_master_*).
            garp_lower_prio_delay=_pick(
                d.garp_lower_prio_delay,
                _pick(gd.vrrp_garp_lower_prio_delay, gd.vrrp_garp_master_delay),
            ),
            garp_lower_prio_repeat=_pick(
                d.garp_lower_prio_repeat,
                _pick(gd.vrrp_garp_lower_prio_repeat, gd.vrrp_garp_master_repeat),
            ),
        )

    def _fit_vips(self, d: InstanceDraft) -> tuple[tuple[VirtualIP, ...], tuple[VirtualIP, ...]]:
        """The advertised and the excluded VIPs, after keepalived's checks on the list.

        No VIP at all draws keepalived's warning (a misspelt `virtual_ipaddress`
        block lands here). More than one advert can carry (RFC 3768 5.3.5: 255;
        keepalived also counts the MTU, which the shell checks at start) are
        moved to the excluded list, as keepalived does: still installed on the
        master, not advertised.
        """
        name = d.name.text
        if not d.vips and not d.allow_no_vips:
            self.rep.warn(d.name, f"({name}) No VIP specified; at least one is sensible")
        if len(d.vips) <= MAX_ADVERT_VIPS:
            return tuple(d.vips), tuple(d.vips_excluded)
        self.rep.warn(
            d.vip_toks[MAX_ADVERT_VIPS],
            f"({name}) Number of VIPs ({len(d.vips)}) exceeds maximum/space available in"
            f" packet (max {MAX_ADVERT_VIPS} addresses) - excess moved to eVIPs",
        )
        excluded = {(e.address, e.dev) for e in d.vips_excluded}
        excess = [v for v in d.vips[MAX_ADVERT_VIPS:] if (v.address, v.dev) not in excluded]
        return tuple(d.vips[:MAX_ADVERT_VIPS]), (*d.vips_excluded, *excess)


_T = TypeVar("_T")


def _pick(own: _T | None, default: _T) -> _T:
    return default if own is None else own


def _user_group(rep: Reporter, stmt: Stmt) -> tuple[str | None, str | None]:
    """`user [[:]group]`, also `user:group` in one word."""
    tok = need_arg(rep, stmt, 1, "a user name [group]")
    if tok is None:
        return None, None
    extra_args(rep, stmt, 2)
    user, _, group = tok.text.partition(":")
    if len(stmt.tokens) > 2:
        group = stmt.tokens[2].text.removeprefix(":")
    if not user:
        rep.error(tok, f"{stmt.keyword.text} needs a user name, got '{tok.text}'")
        return None, None
    return user, group or None


def _script_argv(rep: Reporter, stmt: Stmt) -> tuple[str, ...] | None:
    """Split a script command shell-like (keepalived.md 1.1 item 10)."""
    tok = need_arg(rep, stmt, 1, "a command")
    if tok is None:
        return None
    # The usual `script "cmd 'a b'"`: the double quotes only group the config
    # token; its content is then split with both quote kinds. Otherwise the raw
    # rest of the line is split, so `script /bin/x 'a b'` works too.
    raw = stmt.raw_from(1)
    if len(stmt.tokens) == 2 and len(raw) >= 2 and raw[0] == raw[-1] == '"':
        raw = tok.text
    try:
        argv = shlex.split(raw, posix=True)
    except ValueError as exc:
        rep.error(tok, f"cannot split script command: {exc}")
        return None
    if not argv:
        rep.error(tok, "script needs a command, got an empty string")
        return None
    return tuple(argv)


__all__ = ["ConfigError", "Severity", "load_config", "parse_text"]


def _vrid_place(d: InstanceDraft) -> str | None:
    """Where an instance's VRID must be unique, as far as the file tells."""
    if d.interface is not None:
        return d.interface
    src = d.unicast.src_ip
    return None if src is None else f"the interface of unicast_src_ip {src}"
