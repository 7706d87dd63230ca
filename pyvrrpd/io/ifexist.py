"""Which configured interfaces exist in this network namespace (a config check).

Owns: the located finding for each instance whose `interface` is missing
here, shared by `check-config`/`keepalived -t` (cli/common.py) and by a
reload's refusal (shell/ops/reloader.py). keepalived 2.2.7 reports
"WARNING - interface X for vrrp_instance V doesn't exist" (exit 5) and will
not start unless `dynamic_interfaces` is set; pyvrrpd itself starts and holds
those instances in FAULT until the interface appears (shell/host/statics.py).
Must not: decide exit codes (cli/common.py does).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

from pyvrrpd.config.model import Config, Diagnostic, Severity, SourceLoc


def interface_findings(cfg: Config) -> Iterator[Diagnostic]:
    """One error per instance whose interface does not exist here."""
    if cfg.global_defs.dynamic_interfaces:
        return
    for inst in cfg.instances:
        name = inst.interface
        if not name:
            continue
        try:
            socket.if_nametoindex(name)
        except OSError:
            yield Diagnostic(
                Severity.ERROR,
                inst.loc or SourceLoc("<config>", 0, 0),
                f"interface {name} for vrrp_instance {inst.name} does not exist here: "
                "keepalived would not start (set dynamic_interfaces);"
                " pyvrrpd starts and waits for it in FAULT",
            )
