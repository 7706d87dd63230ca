"""A line-for-line Python port of keepalived-exporter's dump parsers, for tests.

Source: github.com/mehdy/keepalived-exporter, internal/collector/parser.go
(``ParseVRRPData``, ``ParseVRRPScript``, ``ParseStats``, ``ParseVIP``), setter.go
(the state and integer checks that fail a scrape) and collector.go (the JSON
struct's typed fields; ``getKeepalivedStats`` requiring the data and stats
files to name the same instances). Where the Go code returns an error the port
raises ``ExporterError``: a scrape with an error makes the exporter report
``keepalived_up 0``. Kept deliberately literal (Go's ``strings.Split`` is
Python's ``str.split`` with a separator) so a difference in our dumps shows up
here as it would there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VRRP_STATES = ["INIT", "BACKUP", "MASTER", "FAULT"]
SCRIPT_STATUSES = ["BAD", "GOOD"]
SCRIPT_STATES = ["idle", "running", "requested termination", "forcing termination"]


class ExporterError(ValueError):
    """The exporter would fail this scrape."""


@dataclass
class VRRPData:
    iname: str
    state: int = 0
    wantstate: int = 0
    intf: str = ""
    garp_delay: int = 0
    vrid: int = 0
    vips: list[str] = field(default_factory=list)
    excluded_vips: list[str] = field(default_factory=list)


@dataclass
class VRRPScript:
    name: str = ""
    status: str = ""
    state: str = ""


def _state(value: str, what: str) -> int:
    if value not in VRRP_STATES:
        raise ExporterError(f"unknown {what} found: {value}")
    return VRRP_STATES.index(value)


def _atoi(value: str) -> int:
    try:
        return int(value, 10)
    except ValueError as exc:
        raise ExporterError(f"not an integer: {value!r}") from exc


def parse_vrrp_data(text: str) -> dict[str, VRRPData]:
    """``ParseVRRPData``."""
    data: dict[str, VRRPData] = {}
    sep, prop, array_prop = "VRRP Instance", "=", ":"
    instance = key = val = ""
    for line in text.splitlines():
        if line.startswith(" " + sep) and prop in line:
            instance = line.strip().split(prop)[1].strip()
            data[instance] = VRRPData(iname=instance)
        elif line.startswith("   ") and instance != "":
            if line.startswith("     "):
                val = line.strip()
            else:
                if prop in line:
                    args = line.strip().split(prop)
                elif array_prop in line:
                    args = line.strip().split(array_prop)
                else:
                    continue
                key = args[0].strip()
                if key == "Virtual IP":  # isKeyArray
                    continue
                val = args[1].strip()
            if (key.startswith("Virtual IP (") or key == "Virtual IP") and val != "":
                data[instance].vips.append(val.strip())
            if key.startswith("Virtual IP Excluded") and val != "":
                data[instance].excluded_vips.append(val.strip())
            if key == "State":
                data[instance].state = _state(val, "state")
            elif key == "Wantstate":
                data[instance].wantstate = _state(val, "wantstate")
            elif key in ("Interface", "Listening device"):
                data[instance].intf = val
            elif key == "Gratuitous ARP delay":
                data[instance].garp_delay = _atoi(val)
            elif key == "Virtual Router ID":
                data[instance].vrid = _atoi(val)
        elif line.startswith(" VRRP Version") or line.startswith(" VRRP Script"):
            continue
        else:
            instance = ""
    return data


def parse_vrrp_scripts(text: str) -> list[VRRPScript]:
    """``ParseVRRPScript``, plus the status/state checks the collector makes."""
    scripts: list[VRRPScript] = []
    script = VRRPScript()
    for line in text.splitlines():
        if line.startswith(" VRRP Script") and "=" in line:
            if script.name:
                scripts.append(script)
                script = VRRPScript()
            script.name = line.strip().split("=")[1].strip()
        elif line.startswith("   ") and script.name != "":
            if "=" not in line:
                continue
            s = line.strip().split("=")
            key, val = s[0].strip(), s[1].strip()
            if key == "Status":
                script.status = val
            elif key == "State":
                script.state = val
        elif not line.startswith("    ") and script.name:
            scripts.append(script)
            script = VRRPScript()
    if script.name:
        scripts.append(script)
    for sc in scripts:
        if sc.status not in SCRIPT_STATUSES or sc.state not in SCRIPT_STATES:
            raise ExporterError(f"script {sc.name}: status {sc.status!r}, state {sc.state!r}")
    return scripts


_STATS_FIELDS = {
    ("Advertisements", "Received"): "advert_rcvd",
    ("Advertisements", "Sent"): "advert_sent",
    ("Packet Errors", "Length"): "packet_len_err",
    ("Packet Errors", "TTL"): "ip_ttl_err",
    ("Packet Errors", "Invalid Type"): "invalid_type_rcvd",
    ("Packet Errors", "Advertisement Interval"): "advert_interval_err",
    ("Packet Errors", "Address List"): "addr_list_err",
    ("Authentication Errors", "Invalid Type"): "invalid_authtype",
    ("Authentication Errors", "Type Mismatch"): "authtype_mismatch",
    ("Authentication Errors", "Failure"): "auth_failure",
    ("Priority Zero", "Received"): "pri_zero_rcvd",
    ("Priority Zero", "Sent"): "pri_zero_sent",
}


def parse_stats(text: str) -> dict[str, dict[str, int]]:
    """``ParseStats``: per instance, the JSON names of the counters it found."""
    stats: dict[str, dict[str, int]] = {}
    sep, prop = "VRRP Instance", ":"
    instance = section = ""
    for line in text.splitlines():
        if line.startswith(sep) and prop in line:
            instance = line.strip().split(prop)[1].strip()
            stats[instance] = {}
        elif line.startswith("  ") and line.endswith(prop):
            section = line.strip().split(prop)[0].strip()
        elif line.startswith("    ") and section != "":
            sp = line.strip().split(prop)
            key, value = sp[0].strip(), _atoi(sp[1].strip())
            name = _STATS_FIELDS.get((section, key))
            if name is not None:
                stats[instance][name] = value
        elif line.startswith("  ") and not line.endswith(prop) and not line.startswith("    "):
            sp = line.strip().split(prop)
            key, value = sp[0].strip(), _atoi(sp[1].strip())
            section = ""
            if key == "Became master":
                stats[instance]["become_master"] = value
            elif key == "Released master":
                stats[instance]["release_master"] = value
    return stats


def parse_vip(vip: str) -> tuple[str, str]:
    """``ParseVIP``: (address, interface) from ``ADDR dev IF ...``."""
    args = vip.split(" ")
    if len(args) < 3:
        raise ExporterError(f"Failed to parse VIP from keepalived data: {vip!r}")
    return args[0], args[2]


def scrape_text(data_text: str, stats_text: str) -> list[tuple[VRRPData, dict[str, int]]]:
    """``getKeepalivedStats`` (text mode): scripts, stats, data, then the pairing."""
    parse_vrrp_scripts(data_text)
    stats = parse_stats(stats_text)
    data = parse_vrrp_data(data_text)
    if len(data) != len(stats):
        raise ExporterError("keepalived.data and keepalived.stats datas are not synced")
    out = []
    for name, d in data.items():
        if name not in stats:
            raise ExporterError("there is no stats found for instance")
        for vip in d.vips:
            parse_vip(vip)
        out.append((d, stats[name]))
    return out


# collector.go's VRRPData / VRRPStats JSON fields and their Go types.
_JSON_DATA_TYPES: dict[str, type] = {
    "iname": str,
    "state": int,
    "wantstate": int,
    "ifp_ifname": str,
    "garp_delay": int,
    "vrid": int,
}
_JSON_STATS = (
    "advert_rcvd",
    "advert_sent",
    "become_master",
    "release_master",
    "packet_len_err",
    "advert_interval_err",
    "ip_ttl_err",
    "invalid_type_rcvd",
    "addr_list_err",
    "invalid_authtype",
    "authtype_mismatch",
    "auth_failure",
    "pri_zero_rcvd",
    "pri_zero_sent",
)


def _go_decodes(value: Any, typ: type) -> bool:
    """encoding/json into an int rejects 5.0 and true; into a string, numbers."""
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, typ)


def parse_json(text: str) -> list[dict[str, Any]]:
    """``ParseJSON``: a top-level array decoded into []VRRP."""
    doc = json.loads(text)
    if not isinstance(doc, list):
        raise ExporterError("json: cannot unmarshal object into []VRRP")
    for entry in doc:
        data, stats = entry.get("data", {}), entry.get("stats", {})
        for key, typ in _JSON_DATA_TYPES.items():
            if key in data and not _go_decodes(data[key], typ):
                raise ExporterError(f"json: cannot unmarshal {data[key]!r} into {key}")
        for key in ("vips", "evips"):
            if key in data and not (
                isinstance(data[key], list) and all(isinstance(v, str) for v in data[key])
            ):
                raise ExporterError(f"json: cannot unmarshal {key}")
        for key in _JSON_STATS:
            if key in stats and not _go_decodes(stats[key], int):
                raise ExporterError(f"json: cannot unmarshal {stats[key]!r} into {key}")
    return list(doc)
