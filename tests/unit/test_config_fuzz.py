"""Random input gives a Config or a ConfigError, never another exception."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyvrrpd.config import ConfigError, parse_text

GUIDE = (Path(__file__).resolve().parents[1] / "data" / "guide-primary.conf").read_text()

# Pieces that reach deep into the grammar, mixed with arbitrary text.
PIECES = [
    "{",
    "}",
    "\n",
    " ",
    '"',
    "'",
    "!",
    "#",
    "\\",
    "$",
    "${X}",
    "$X=1 ",
    "@lb1 ",
    "@^x ",
    "/",
    "global_defs",
    "vrrp_script",
    "vrrp_instance",
    "VI_1",
    "interface",
    "eth0",
    "virtual_router_id",
    "priority",
    "state",
    "MASTER",
    "advert_int",
    "nopreempt",
    "preempt_delay",
    "authentication",
    "auth_type",
    "PASS",
    "auth_pass",
    "virtual_ipaddress",
    "virtual_ipaddress_excluded",
    "192.0.2.1/24",
    "dev",
    "brd",
    "scope",
    "label",
    "::1",
    "track_script",
    "weight",
    "reverse",
    "script",
    "interval",
    "rise",
    "fall",
    "user",
    "include",
    "includem",
    "includea",
    "nosuch_*.conf",
    "{a,b}",
    "1",
    "0",
    "255",
    "-254",
    "1.5",
    "on",
    "off",
    "smtp_server",
    "script_user",
    "notification_email",
    "unicast_peer",
    "virtual_server",
    "garp_master_repeat",
    "~SEQ(i,1,1,2)",
]

texts = st.one_of(
    st.text(max_size=300),
    st.lists(st.sampled_from(PIECES) | st.text(max_size=4), max_size=80).map("".join),
    st.tuples(st.integers(0, len(GUIDE)), st.integers(0, len(GUIDE)), st.text(max_size=10)).map(
        lambda t: GUIDE[: t[0]] + t[2] + GUIDE[t[1] :]
    ),
)


@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(texts)
def test_random_text_gives_config_or_config_error(text: str) -> None:
    try:
        cfg = parse_text(text, "fuzz.conf", config_id="lb1")
    except ConfigError as err:
        assert err.errors
        for d in err.diagnostics:
            assert d.format().startswith("fuzz.conf:") or d.loc.file != "fuzz.conf"
    else:
        for inst in cfg.instances:
            assert 1 <= inst.virtual_router_id <= 255
            assert 1 <= inst.priority <= 255
            assert inst.auth_pass == b"" or len(inst.auth_pass) == 8
