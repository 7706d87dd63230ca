"""shell/ops/runstate.py: the record's name, its route/rule codec, and the live-writer check."""

from __future__ import annotations

import os
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from pyvrrpd.cli.release import check
from pyvrrpd.config.routemodel import Route, Rule
from pyvrrpd.shell.ops import runstate


def test_state_file_follows_the_control_socket() -> None:
    assert runstate.state_file_for(None) == "/run/pyvrrpd/pyvrrpd.state"
    assert runstate.state_file_for("/run/ka1.pyvrrpd.sock") == "/run/ka1.pyvrrpd.state"


def test_routes_and_rules_round_trip() -> None:
    items: list[Route | Rule] = [
        Route(IPv4Network("203.0.113.0/24"), via=IPv4Address("192.0.2.66"), dev="eth0"),
        Route(IPv4Network("198.51.100.0/24"), type="blackhole", table=100, metric=5),
        Rule(100, src=IPv4Network("192.0.2.10/32"), priority=100, fwmark=3, fwmask=255),
    ]
    for item in items:
        assert runstate.decode_item(runstate.encode_item(item)) == item


def test_a_live_writer_is_refused_and_a_dead_one_is_not(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    rs = runstate.RunState(str(path), release_on_stop=True)
    rs.host(nft_table=None, vmacs=[])
    record, message = check(str(path))
    assert record is None and message is not None and f"pid {os.getpid()}" in message
    # Same pid, another process start time: the pid was reused, the writer is gone.
    text = path.read_text().replace(f'"start":{runstate.process_start(os.getpid())}', '"start":1')
    path.write_text(text)
    record, message = check(str(path))
    assert message is None and record is not None and record["pid"] == os.getpid()
    assert check(str(tmp_path / "none.state")) == (None, None)
