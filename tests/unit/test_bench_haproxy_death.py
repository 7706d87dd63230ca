"""The HAProxy-death benchmark's pure parts: configs, log lines, adverts, the table."""

from __future__ import annotations

import socket
import struct
from datetime import datetime

from bench import haproxy_death as hd
from pyvrrpd.lab.advertcap import parse_vrrp
from pyvrrpd.lab.netns import stamped_lines


def _vrrp_packet(src: str, vrid: int, priority: int, proto: int = 112) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 28, 0, 0, 255, proto, 0, socket.inet_aton(src),
                     socket.inet_aton("224.0.0.18"))  # fmt: skip
    return ip + bytes([0x21, vrid, priority, 1, 0, 1, 0, 0])


def test_parse_vrrp_reads_source_vrid_priority() -> None:
    assert parse_vrrp(_vrrp_packet("192.0.2.11", 51, 0)) == ("192.0.2.11", 51, 0)
    assert parse_vrrp(_vrrp_packet("192.0.2.11", 51, 0, proto=6)) is None
    assert parse_vrrp(b"\x45") is None


def test_process_variant_config_swaps_script_for_track_process() -> None:
    text = hd.daemon_conf("lb2", "process")
    assert "vrrp_script" not in text and "track_script" not in text
    assert "vrrp_track_process haproxy {\n  process haproxy\n  weight 0\n}" in text
    assert "track_process {\n    haproxy\n  }" in text
    assert "priority 90" in text and "nopreempt" in text
    assert "track_script" in hd.daemon_conf("lb1", "script")


def test_stamped_lines_and_pyvrrpd_detection_use_the_json_timestamp() -> None:
    stamp = "2026-11-25T03:24:36.690298"
    wall = datetime.fromisoformat(stamp).timestamp()
    log = (
        f"@{wall - 5:.6f} early line\n"
        f'@{wall + 0.01:.6f} Wed Nov 25 03:24:36 2026: Stopping {{"event": "stopping", '
        f'"timestamp": "{stamp}"}}\n'
    )
    assert [t for t, _ in stamped_lines(log)] == [round(wall - 5, 6), round(wall + 0.01, 6)]
    got = hd.detection(hd.BY_KEY["py-script"], log, wall - 1)
    assert got is not None and abs(got[0] - wall) < 1e-6
    # track_process: a FAULT transition counts, a script's stop does not
    assert hd.detection(hd.BY_KEY["py-process"], log, wall - 1) is None
    fault = f'@{wall:.6f} {{"event": "state_change", "new": "FAULT", "timestamp": "{stamp}"}}\n'
    assert hd.detection(hd.BY_KEY["py-process"], fault, wall - 1) is not None
    down = f'@{wall:.6f} {{"event": "track_process", "state": "down", "timestamp": "{stamp}"}}\n'
    up = down.replace('"down"', '"up"')
    assert hd.detection(hd.BY_KEY["py-process"], up, wall - 1) is None
    line = down.split(" ", 1)[1].strip()
    assert hd.detection(hd.BY_KEY["py-process"], up + down, wall - 1) == (wall, line)


def test_keepalived_detection_uses_arrival_time() -> None:
    log = "@100.000000 Wed: Starting\n@102.500000 Wed Nov 25 03:29:47 2026: Stopping\n"
    assert hd.detection(hd.BY_KEY["ka-script"], log, 101.0) == (
        102.5,
        "Wed Nov 25 03:29:47 2026: Stopping",
    )


def test_table_medians_ratio_targets_and_never_master() -> None:
    def r(key: str, det: float, vip: float) -> hd.DeathRound:
        return hd.DeathRound(key, detect_s=det, advert_s=det, vip_s=vip, gap_s=vip)

    results = {
        "py-process": [r("py-process", 0.002, 0.66), r("py-process", 0.001, 0.65)],
        "ka-script": [r("ka-script", 1.0, 1.65), r("ka-script", 1.2, 1.85)],
        "ka-process": [hd.DeathRound("ka-process", never_master=True, notes=["lb1 logged: x"])],
    }
    text = hd.table(results, 2)
    assert "1.5 [1.0-2.0]" in text  # detection median in ms
    assert " 0.37" in text  # 655 / 1750
    assert "never MASTER" in text and "lb1 logged: x" in text
    assert "detection median 1.5 ms < 5 ms: met" in text
    assert "client gap median 655.0 ms <= Skew_Time + 50 ms = 698 ms: met" in text
    assert "ratio (VIP on lb2) 0.37 <= 0.5: met" in text


def test_phases_are_the_classic_rows_offsets() -> None:
    assert hd.phases(5) == [0.2, 0.6, 1.0, 1.4, 1.8]
