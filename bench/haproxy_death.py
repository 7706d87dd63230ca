"""The benchmark's HAProxy-death rows: SIGKILL of HAProxy's master on the VRRP master.

Each round builds a fresh guide lab (pyvrrpd/lab), runs HAProxy on lb1 and lb2
in master-worker mode (``haproxy -W``, the process layout of systemd's
``-Ws`` unit: a master, whose PID is in the pidfile, and one worker), starts
the VRRP daemon on lb1 then lb2 (both ``state BACKUP`` + ``nopreempt``,
priorities 100/90, as in the guide), waits until lb1 is master, then sends
SIGKILL to HAProxy's master on lb1 (its worker exits ~1 ms later on its own)
and measures, from the instant the kill syscall returned:

(a) detection: the first daemon log line on lb1 that shows it knows. pyvrrpd:
    the line's own JSON ``timestamp`` (microseconds); with track_process the
    first tracker/FAULT line, with the guide's script the SIGTERM that the
    script's ``killall keepalived`` sends. keepalived 2.2.7 prints whole
    seconds only on the console, so its lines are stamped on arrival through
    a pipe (``Lab.spawn(stamp=True)``): with the guide's script, its first
    line after the kill ("Stopping", the script's killall);
(b) the first priority-0 advert from lb1, captured with an AF_PACKET socket
    on lb1's port of the LAN bridge (kernel receive timestamps);
(c) the VIP on lb2, read through netlink in lb2's namespace every 5 ms;
(d) the longest gap in the client's requests to the VIP, one GET every 10 ms
    on a new connection with a 25 ms timeout (first failed request to the next
    answered one; a SYN sent to lb1 just before lb2's gratuitous ARP waits out
    its timeout, so the figure can run up to ~25 ms long).

Variants: pyvrrpd with ``vrrp_track_process`` (weight 0), pyvrrpd and
keepalived with the guide's check script (interval 2 s), and keepalived with
its own ``vrrp_track_process``, which in a network namespace other than the
initial one cannot subscribe to the process-events connector and stays in
FAULT: that variant is reported as what it does, not as a number.

The guide's script detects the death at its next run, so for the script
variants each round first watches lb1's process list for a run of
``check_haproxy.sh`` and kills HAProxy ``phase`` seconds after it started;
the phases are the existing haproxy-death row's offsets, (i + 0.5) x 2 s /
rounds, the same for both daemons.

Owns: the variants' configs, one round, the medians and the table. Must not
run anything outside the lab's namespaces (the lab enforces that).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources

from pyvrrpd.lab.advertcap import AdvertCapture
from pyvrrpd.lab.netns import KEEPALIVED_CONF, LBS, Lab, stamped_lines, wait_for
from pyvrrpd.lab.probe import Probe, outage
from pyvrrpd.lab.services import DaemonKind, Services
from pyvrrpd.lab.vipwatch import AddrWatch

VIP = "192.0.2.10"
LB1_ADDR = "192.0.2.11"
CHECK_INTERVAL = 2.0  # the guide's vrrp_script interval
SKEW_LB2 = (256 - 90) / 256  # RFC 3768 6.1 Skew_Time of lb2 (priority 90), 0.648 s
TARGET_DETECT_S = 0.005
TARGET_GAP_S = SKEW_LB2 + 0.050
TARGET_RATIO = 0.5
ELECTION_TIMEOUT = 10.0
FAILOVER_TIMEOUT = 8.0  # check interval 2 s + Skew_Time + slack
VIP_POLL = 0.005
PROBE_INTERVAL = 0.010
PROBE_TIMEOUT = 0.025

# The tracker block of the track_process variants (keepalived syntax).
TRACK_PROCESS_BLOCK = """\
vrrp_track_process haproxy {
  process haproxy
  weight 0
}
"""


@dataclass(frozen=True, slots=True)
class Variant:
    """One daemon + tracking method."""

    key: str
    label: str
    kind: DaemonKind
    tracking: str  # "process" | "script"


VARIANTS: tuple[Variant, ...] = (
    Variant("py-process", "pyvrrpd track_process", "pyvrrpd", "process"),
    Variant("py-script", "pyvrrpd guide script", "pyvrrpd", "script"),
    Variant("ka-script", "keepalived guide script", "keepalived", "script"),
    Variant("ka-process", "keepalived track_process", "keepalived", "process"),
)
BY_KEY = {v.key: v for v in VARIANTS}
# the ratio column: pyvrrpd's answer over keepalived with the guide's script
RATIO = ("py-process", "ka-script")


@dataclass(slots=True)
class DeathRound:
    """What one round measured (seconds after the kill; ``None``: did not happen)."""

    variant: str
    detect_s: float | None = None
    detect_line: str = ""
    advert_s: float | None = None
    vip_s: float | None = None
    gap_s: float | None = None
    phase_s: float | None = None  # kill - start of the last check script run
    never_master: bool = False  # no daemon ever held the VIP (keepalived track_process)
    notes: list[str] = field(default_factory=list)


def daemon_conf(lb: str, tracking: str) -> str:
    """The lab's (guide's) keepalived.conf for ``lb``; with ``process`` the
    vrrp_script/track_script pair becomes vrrp_track_process/track_process."""
    text = (resources.files("pyvrrpd.lab") / "files" / KEEPALIVED_CONF[lb]).read_text()
    if tracking == "script":
        return text
    block = r"vrrp_script check_haproxy \{.*?\n\}\n"
    text, n = re.subn(block, TRACK_PROCESS_BLOCK, text, count=1, flags=re.S)
    ref = r"track_script \{\s*check_haproxy\s*\}"
    text, m = re.subn(ref, "track_process {\n    haproxy\n  }", text)
    if n != 1 or m != 1:
        raise RuntimeError(f"lab config for {lb} no longer has the guide's track_script")
    return text


# ---------------------------------------------------------------- detection lines
def _json_of(line: str) -> dict[str, object] | None:
    start = line.find("{")
    if start < 0:
        return None
    try:
        obj = json.loads(line[start:])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _py_detects(tracking: str, ev: dict[str, object]) -> bool:
    name = str(ev.get("event", ""))
    if tracking == "script":
        # the script's `killall keepalived` is a SIGTERM to the daemon
        return name in ("signal_received", "stopping")
    if name == "track_process" and ev.get("state") == "down":  # trackers/process.py
        return True
    # the core's answer to the tracker event, logged in the same loop turn
    return name == "state_change" and ev.get("new") == "FAULT"


_KA_DETECT = {
    "script": re.compile(r"Stopping|SIGTERM"),
    "process": re.compile(r"process exit|Quorum lost|quorum lost|Entering FAULT"),
}


def detection(variant: Variant, log: str, t_kill_wall: float) -> tuple[float, str] | None:
    """(wall time, line) of the first log line after the kill showing lb1 knows."""
    for arrival, line in stamped_lines(log):
        if arrival < t_kill_wall:
            continue
        if variant.kind == "pyvrrpd":
            ev = _json_of(line)
            if ev is None or not _py_detects(variant.tracking, ev):
                continue
            stamp = ev.get("timestamp")
            try:
                # structlog's local ISO time with microseconds
                when = datetime.fromisoformat(str(stamp)).timestamp()
            except ValueError:
                when = arrival
            return when, line
        if _KA_DETECT[variant.tracking].search(line):
            return arrival, line
    return None


# ---------------------------------------------------------------- the round
def _script_run_started(lab: Lab, host: str, timeout: float) -> float | None:
    """Monotonic time a new ``check_haproxy.sh`` process was first seen on ``host``."""

    def runs() -> set[int]:
        return {pid for pid, cmd in lab.host_cmdlines(host).items() if "check_haproxy.sh" in cmd}

    # a PID first shows the daemon's command line (forked) and the script's after exec
    old = runs()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if runs() - old:
            return time.monotonic()
        time.sleep(0.002)
    return None


def _kill_haproxy_master(svc: Services, host: str) -> tuple[float, float]:
    """SIGKILL HAProxy's master on ``host`` through a pidfd; (monotonic, wall) after it."""
    pid = svc.haproxy_pid(host)
    gpid = svc.lab.global_pid(host, pid) if pid is not None else None
    if gpid is None:
        raise RuntimeError(f"{host}: HAProxy's master not found")
    fd = os.pidfd_open(gpid)
    try:
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return time.monotonic(), time.time()
    finally:
        os.close(fd)


def _start_pair(svc: Services, variant: Variant) -> bool:
    """HAProxy (master-worker) and the daemon on lb1 then lb2; True once lb1 alone has the VIP."""
    lab = svc.lab
    for lb in LBS:
        svc.write_daemon_conf(lb, daemon_conf(lb, variant.tracking))
    svc.start_backends()
    for lb in LBS:
        svc.check_haproxy_config(lb)
        svc.start_haproxy(lb, master_worker=True)
    for lb in LBS:
        svc.start_daemon(lb)
        wait_for(lambda lb=lb: _settled(svc, lb), 10.0, 0.05)  # type: ignore[misc]
    ok, _ = wait_for(lambda: lab.vip_holders() == ["lb1"], ELECTION_TIMEOUT, 0.05)
    return ok


def one_round(variant: Variant, phase: float, log: Callable[[str], None] = print) -> DeathRound:
    """Build a lab, elect lb1, SIGKILL HAProxy's master on lb1, measure; always tears down."""
    out = DeathRound(variant.key)
    lab = Lab()
    capture: AdvertCapture | None = None
    watch: AddrWatch | None = None
    try:
        lab.build()
        svc = Services(lab, variant.kind, stamp_logs=True)
        if not _start_pair(svc, variant):
            holders = lab.vip_holders()
            if holders:
                raise RuntimeError(f"{variant.key}: election gave the VIP to {holders}")
            out.never_master = True
            out.notes += _never_master_notes(svc)
        # lb2 settled as BACKUP (it heard lb1's adverts) before the kill
        time.sleep(1.0)
        capture = AdvertCapture(lab.switch_ns, "lb1-e")
        watch = AddrWatch({"lb2": lab.hosts["lb2"].netns})
        probe = Probe(lab, "death", interval=PROBE_INTERVAL, timeout=PROBE_TIMEOUT)
        if not out.never_master and not wait_for(probe.answered, 5.0, 0.02)[0]:
            out.notes.append("client not answered before the kill")
        if variant.tracking == "script":
            t_run = _script_run_started(lab, "lb1", CHECK_INTERVAL + 0.5)
            if t_run is None:
                raise RuntimeError(f"{variant.key}: no check script run seen on lb1")
            target = t_run + phase
            while target < time.monotonic() + 0.005:
                target += CHECK_INTERVAL
            time.sleep(target - time.monotonic())
            t_kill, wall_kill = _kill_haproxy_master(svc, "lb1")
            out.phase_s = t_kill - t_run
        else:
            t_kill, wall_kill = _kill_haproxy_master(svc, "lb1")
        off = wall_kill - t_kill  # wall - monotonic

        def vip_on_lb2() -> bool:
            assert watch is not None
            return VIP in watch.addresses("lb2")

        timeout = 3.0 if out.never_master else FAILOVER_TIMEOUT
        ok, _ = wait_for(vip_on_lb2, timeout, VIP_POLL)
        if ok:
            out.vip_s = time.monotonic() - t_kill
            wait_for(probe.answered, 5.0, 0.02)
        samples = [s for s in probe.stop() if s.t >= t_kill - 0.05]
        if ok and samples:
            out.gap_s = outage(samples)
        # the advert and the log line may trail the VIP by a scheduler tick
        cap = capture
        wait_for(lambda: cap.first(LB1_ADDR, 0, t_kill) is not None, 0.5, 0.02)
        adv = capture.first(LB1_ADDR, 0, t_kill)
        out.advert_s = adv.t - t_kill if adv else None
        wait_for(lambda: detection(variant, svc.daemon_log("lb1"), wall_kill) is not None, 1.0)
        det = detection(variant, svc.daemon_log("lb1"), wall_kill)
        if det is not None:
            out.detect_s = det[0] - off - t_kill
            out.detect_line = det[1][:160]
        if out.never_master:
            out.notes.append(f"after the kill: VIP holders {lab.vip_holders() or 'none'}")
        return out
    except BaseException:
        kept = lab.keep_logs()
        if kept is not None:
            log(f"{variant.key}: round failed, lab logs kept in {kept}")
        raise
    finally:
        if capture is not None:
            capture.close()
        if watch is not None:
            watch.close()
        lab.close()


def _settled(svc: Services, lb: str) -> bool:
    """BACKUP/MASTER reached, or FAULT logged (keepalived's track_process in the lab)."""
    return svc.daemon_ready(lb) or "entering fault state" in svc.daemon_log(lb).lower()


def _never_master_notes(svc: Services) -> list[str]:
    """What each box logged, in keepalived's words, when nobody became MASTER."""
    notes = [f"never MASTER within {ELECTION_TIMEOUT:.0f} s of start"]
    for lb in LBS:
        said = []
        for _, line in stamped_lines(svc.daemon_log(lb)):
            text = line.split(": ", 1)[-1].strip()
            if "errno" in text or "FAULT" in text.upper() or "MASTER STATE" in text:
                said.append(text)
        notes.append(f"{lb} logged: " + (" / ".join(dict.fromkeys(said)) or "-"))
    return notes


# ---------------------------------------------------------------- the table
ROWS: tuple[tuple[str, str], ...] = (
    ("detect_s", "(a) death -> tracker event"),
    ("advert_s", "(b) death -> priority-0 advert on wire"),
    ("vip_s", "(c) death -> VIP on lb2"),
    ("gap_s", "(d) client's longest gap (GET / 10 ms)"),
)


def _values(rounds: Sequence[DeathRound], key: str) -> list[float]:
    return [v for r in rounds if (v := getattr(r, key)) is not None]


def _cell(rounds: Sequence[DeathRound], key: str) -> str:
    if rounds and all(r.never_master for r in rounds):
        return "never MASTER"
    vals = _values(rounds, key)
    if not vals:
        return "-"
    ms = [v * 1000 for v in vals]
    miss = len(rounds) - len(vals)
    tail = f" ({miss} none)" if miss else ""
    return f"{statistics.median(ms):.1f} [{min(ms):.1f}-{max(ms):.1f}]{tail}"


def _median(rounds: Sequence[DeathRound], key: str) -> float | None:
    vals = _values(rounds, key)
    return statistics.median(vals) if vals else None


def table(results: dict[str, list[DeathRound]], rounds: int) -> str:
    """The printed table: one column per variant, the ratio, the targets."""
    keys = [v.key for v in VARIANTS if v.key in results]
    lines = [
        f"HAProxy death: SIGKILL of HAProxy's master (-W) on the master lb1; guide lab, "
        f"{rounds} rounds per variant; median [min-max] in ms; "
        f"ratio = {BY_KEY[RATIO[0]].label} / {BY_KEY[RATIO[1]].label}",
    ]
    head = f"{'metric':40s}" + "".join(f" {BY_KEY[k].label:>26s}" for k in keys)
    has_ratio = all(k in results for k in RATIO)
    lines.append(head + (f" {'ratio':>6s}" if has_ratio else ""))
    for key, label in ROWS:
        row = f"{label:40s}" + "".join(f" {_cell(results[k], key):>26s}" for k in keys)
        if has_ratio:
            a, b = _median(results[RATIO[0]], key), _median(results[RATIO[1]], key)
            row += f" {a / b:6.3f}" if a is not None and b else f" {'-':>6s}"
        lines.append(row)
    for k in keys:
        phases = _values(results[k], "phase_s")
        if phases:
            lines.append(
                f"  {BY_KEY[k].label}: kill at {', '.join(f'{p:.2f}' for p in phases)} s "
                "after a check script run started"
            )
        for r in results[k]:
            for note in r.notes:
                lines.append(f"  {BY_KEY[k].label}: {note}")
    lines += _targets(results)
    return "\n".join(lines)


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _targets(results: dict[str, list[DeathRound]]) -> list[str]:
    out: list[str] = []
    py = results.get(RATIO[0])
    if not py:
        return out
    det = _median(py, "detect_s")
    gap = _median(py, "gap_s")
    if det is not None:
        out.append(
            f"target: detection median {det * 1000:.1f} ms < {TARGET_DETECT_S * 1000:.0f} ms: "
            f"{_verdict(det < TARGET_DETECT_S)}"
        )
    if gap is not None:
        out.append(
            f"target: client gap median {gap * 1000:.1f} ms <= Skew_Time + 50 ms = "
            f"{TARGET_GAP_S * 1000:.0f} ms: {_verdict(gap <= TARGET_GAP_S)}"
        )
    ka = results.get(RATIO[1])
    if ka:
        for key, label in (("vip_s", "VIP on lb2"), ("gap_s", "client gap")):
            a, b = _median(py, key), _median(ka, key)
            if a is not None and b:
                out.append(
                    f"target: ratio ({label}) {a / b:.2f} <= {TARGET_RATIO}: "
                    f"{_verdict(a / b <= TARGET_RATIO)}"
                )
    return out


def phases(rounds: int) -> list[float]:
    """The existing haproxy-death row's offsets over the 2 s check period."""
    return [CHECK_INTERVAL * (i + 0.5) / rounds for i in range(rounds)]


def run(
    keys: Sequence[str], rounds: int, log: Callable[[str], None] = print
) -> dict[str, list[DeathRound]]:
    """Every variant in ``keys`` for ``rounds`` rounds (keepalived track_process: one
    round, it never becomes MASTER in the lab); returns the rounds per variant."""
    results: dict[str, list[DeathRound]] = {}
    offsets = phases(rounds)
    for key in keys:
        variant = BY_KEY[key]
        n = 1 if key == "ka-process" else rounds
        results[key] = []
        for i in range(n):
            log(f"haproxy-death {variant.label}: round {i + 1}/{n}")
            r = one_round(variant, offsets[i], log)
            results[key].append(r)
            with contextlib.suppress(TypeError):
                log(
                    f"  detect {r.detect_s} advert {r.advert_s} vip {r.vip_s} gap {r.gap_s} "
                    f"phase {r.phase_s} {r.detect_line[:90]!r}"
                )
    return results
