"""vrrp_track_http / track_http (config/trackhttp.py): syntax, defaults, errors,
sync-group merging, the pyvrrpd-only warning and `keepalived -t`'s exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvrrpd.cli.common import CHK_OK, check_config
from pyvrrpd.config.model import TrackHttp, TrackHttpRef
from pyvrrpd.config.trackhttp import split_url
from pyvrrpd.core.tracking import TrackerSpec
from pyvrrpd.trackers.http import http_source, http_specs
from tests.unit._confdiag import errors, parse

HAP = "vrrp_track_http hap {\n  url http://127.0.0.1:8081/healthz\n}\n"


def inst(body: str = "  track_http {\n    hap\n  }\n", name: str = "VI_1", prio: int = 100) -> str:
    return (
        f"vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id {prio % 200 + 1}\n"
        f"  priority {prio}\n  virtual_ipaddress {{\n    192.0.2.10\n  }}\n{body}}}\n"
    )


def block(body: str, name: str = "hap") -> TrackHttp:
    cfg = parse(f"vrrp_track_http {name} {{\n{body}}}\n")
    return cfg.track_https[0]


def test_defaults_are_for_fast_failover() -> None:
    b = parse(HAP).track_https[0]
    assert (b.host, b.port, b.path, b.expect) == ("127.0.0.1", 8081, "/healthz", 200)
    assert (b.interval, b.timeout, b.rise, b.fall, b.weight, b.reverse) == (
        0.5,
        0.5,
        2,
        2,
        0,
        False,
    )
    assert b.stats_socket is None


def test_every_keyword() -> None:
    b = block(
        "  url http://[::1]/ready?full=1\n  expect 204\n  interval 2\n  timeout 0.3\n"
        "  rise 3\n  fall 4\n  weight -20 reverse\n"
    )
    assert (b.host, b.port, b.path, b.expect) == ("::1", 80, "/ready?full=1", 204)
    assert (b.interval, b.timeout, b.rise, b.fall, b.weight, b.reverse) == (
        2.0,
        0.3,
        3,
        4,
        -20,
        True,
    )


def test_timeout_defaults_to_interval_capped_at_one_second() -> None:
    assert block("  url http://127.0.0.1/\n  interval 0.2\n").timeout == 0.2
    assert block("  url http://127.0.0.1/\n  interval 5\n").timeout == 1.0


def test_stats_socket() -> None:
    b = block("  stats_socket /run/haproxy/admin.sock\n")
    assert (b.stats_socket, b.url) == ("/run/haproxy/admin.sock", None)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/", "uses https"),
        ("ftp://127.0.0.1/", "is not http://"),
        ("http://u:p@127.0.0.1/", "carries a user name"),
        ("http:///x", "has no host"),
        ("http://127.0.0.1:99999/", "has a bad port"),
        ("http://bad_host/", "has a host that is neither an IP address nor a host name"),
    ],
)
def test_bad_urls(url: str, why: str) -> None:
    (msg,) = errors(f"vrrp_track_http h {{\n  url {url}\n}}\n")
    assert msg.startswith(f"2:7: url {why}")
    assert "plain HTTP only, no https" in msg


def test_names_are_accepted() -> None:
    assert split_url("http://localhost:8081/healthz") == ("localhost", 8081, "/healthz")


def test_exactly_one_target() -> None:
    assert errors("vrrp_track_http h {\n  interval 1\n}\n") == [
        "1:17: vrrp_track_http h needs exactly one of 'url' and 'stats_socket'"
    ]
    both = "vrrp_track_http h {\n  url http://127.0.0.1/\n  stats_socket /s\n}\n"
    assert errors(both) == ["3:3: vrrp_track_http h needs exactly one of 'url' and 'stats_socket'"]


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("interval 0.01", "2:12: interval must be a number 0.05..4294 (seconds), got '0.01'"),
        ("timeout x", "2:11: timeout must be a number 0.001..4294 (seconds), got 'x'"),
        ("fall 0", "2:8: fall must be an integer 1..2147483647, got '0'"),
        ("weight 254", "2:10: weight must be an integer -253..253, got '254'"),
        ("expect 42", "2:10: expect (an HTTP status code) must be an integer 100..599, got '42'"),
        ("stats_socket rel.sock", "2:16: stats_socket must be an absolute path, got 'rel.sock'"),
    ],
)
def test_bad_values(line: str, want: str) -> None:
    text = f"vrrp_track_http h {{\n  {line}\n  url http://127.0.0.1/\n}}\n"
    assert want in errors(text)


def test_duplicate_block_and_unknown_ref_are_errors() -> None:
    assert errors(HAP + HAP + inst()) == [
        "4:17: duplicate vrrp_track_http 'hap' (first defined at k.conf:1:17)"
    ]
    # A typo would leave HAProxy untracked: an error, not keepalived's "ignored".
    assert errors(HAP + inst("  track_http {\n    hpa\n  }\n")) == [
        "12:5: track_http 'hpa' is not a defined vrrp_track_http"
    ]


def test_instance_refs_and_specs() -> None:
    text = (
        HAP
        + "vrrp_track_http sock {\n  stats_socket /s\n  weight 10\n}\n"
        + inst("  track_http {\n    hap weight -30 reverse\n    sock\n  }\n")
    )
    cfg = parse(text)
    i = cfg.instances[0]
    assert i.track_http == (TrackHttpRef("hap", -30, True), TrackHttpRef("sock"))
    assert http_specs(i, cfg) == (
        TrackerSpec("http:hap", -30, True),
        TrackerSpec("http:sock", 10, False),
    )


def test_source_only_for_used_blocks() -> None:
    cfg = parse(HAP + inst(""))
    assert http_source(cfg, lambda *_: None) is None
    assert http_source(parse(HAP + inst()), lambda *_: None) is not None


def test_pyvrrpd_only_warnings_do_not_change_the_exit_code(tmp_path: Path) -> None:
    text = HAP + inst()
    cfg = parse(text)
    notes = [(d.loc.line, d.loc.col, d.message) for d in cfg.warnings]
    assert (1, 1) in [(n[0], n[1]) for n in notes]
    assert (11, 3) in [(n[0], n[1]) for n in notes]
    assert all(d.keepalived_silent for d in cfg.warnings)
    assert "keepalived 2.2.7 does not know it" in notes[0][2]
    assert "Unknown keyword 'vrrp_track_http'" in notes[0][2]
    path = tmp_path / "k.conf"
    path.write_text(text)
    result = check_config(str(path), host=False)
    assert result.code == CHK_OK
    assert len(result.diagnostics) == 2


def test_sync_group_refs_go_to_members() -> None:
    text = (
        HAP
        + "vrrp_track_http w {\n  url http://127.0.0.1/\n  weight 5\n}\n"
        + inst("  track_http {\n    w\n  }\n", "A", 100)
        + inst("", "B", 90)
        + "vrrp_sync_group G {\n  group {\n    A B\n  }\n  track_http {\n    hap\n  }\n}\n"
    )
    cfg = parse(text)
    a, b = cfg.instances
    # keepalived's rule for tracked scripts: a member's weighted tracker is
    # dropped unless sync_group_tracking_weight; the group's goes to all.
    assert a.track_http == (TrackHttpRef("hap"),)
    assert b.track_http == (TrackHttpRef("hap"),)
    assert cfg.sync_groups[0].track_http == (TrackHttpRef("hap"),)
    assert any("ignoring track_http w with weights" in d.message for d in cfg.warnings)


def test_sync_group_tracking_weight_keeps_weights() -> None:
    text = (
        "vrrp_track_http w {\n  url http://127.0.0.1/\n  weight 5\n}\n"
        + inst("  track_http {\n    w\n  }\n", "A", 100)
        + inst("", "B", 90)
        + "vrrp_sync_group G {\n  group {\n    A B\n  }\n  sync_group_tracking_weight\n}\n"
    )
    a, b = parse(text).instances
    assert (a.track_http, b.track_http) == ((TrackHttpRef("w"),), ())
