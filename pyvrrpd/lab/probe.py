"""Client availability probe: GET http://VIP/ every 50 ms, and what the samples mean.

Two halves:

* the probe itself (``main``), run on the client host as a plain script
  ``python probe.py --url http://192.0.2.10/``: one new TCP connection per GET,
  ~200 ms timeout, one line per request on stdout ``<monotonic> <0|1> <backend>``;
  it stops by itself after ``--max-seconds`` or ``--max-count``, or on SIGTERM;
* the parent side (:class:`Probe`, :func:`outage`, :func:`backends`), which starts
  it through the lab and turns its samples into an unavailability window.

CLOCK_MONOTONIC is system-wide, so probe timestamps compare with the parent's.
Standard library only at import time (the script runs with ``python -I``).
"""

from __future__ import annotations

import argparse
import http.client
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from pyvrrpd.lab.netns import Lab

PROBE_PY = Path(__file__)


@dataclass(frozen=True, slots=True)
class Sample:
    """One probe request: start time (monotonic s), success, answering backend."""

    t: float
    ok: bool
    backend: str


def get_once(host: str, port: int, path: str, timeout: float) -> str | None:
    """One GET on a fresh connection; the body's first line, or ``None`` on failure."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        body = resp.read(256)
        if resp.status != 200:
            return None
        return body.decode(errors="replace").strip().splitlines()[0] if body.strip() else "?"
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> int:
    """Probe until stopped; print one sample per line, flushed."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--url", default="http://192.0.2.10/")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--timeout", type=float, default=0.2)
    ap.add_argument("--max-seconds", type=float, default=60.0)
    ap.add_argument("--max-count", type=int, default=2000)
    args = ap.parse_args(argv)
    url = urlsplit(args.url)
    host, port, path = url.hostname or "192.0.2.10", url.port or 80, url.path or "/"
    stop = False

    def on_term(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    end = time.monotonic() + args.max_seconds
    count = 0
    while not stop and count < args.max_count and time.monotonic() < end:
        t0 = time.monotonic()
        name = get_once(host, port, path, args.timeout)
        sys.stdout.write(f"{t0:.6f} {int(name is not None)} {name or '-'}\n")
        sys.stdout.flush()
        count += 1
        rest = t0 + args.interval - time.monotonic()
        if rest > 0 and not stop:
            time.sleep(rest)
    return 0


def parse(text: str) -> list[Sample]:
    """Parse probe output lines (a torn last line is ignored)."""
    out: list[Sample] = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in ("0", "1"):
            try:
                out.append(Sample(float(parts[0]), parts[1] == "1", parts[2]))
            except ValueError:
                continue
    return out


def outage(samples: list[Sample]) -> float:
    """Longest unavailability: first failed probe to the next success, in seconds.

    A failure run that never recovers counts up to the last sample. 0.0 if none failed.
    """
    worst = 0.0
    start: float | None = None
    for s in samples:
        if not s.ok and start is None:
            start = s.t
        elif s.ok and start is not None:
            worst = max(worst, s.t - start)
            start = None
    if start is not None and samples:
        worst = max(worst, samples[-1].t - start)
    return worst


def backends(samples: list[Sample]) -> list[str]:
    """Sorted names of the backends that answered."""
    return sorted({s.backend for s in samples if s.ok})


def ok_at_end(samples: list[Sample], n: int = 3) -> bool:
    """True if the last ``n`` probes all succeeded (the client is answered now)."""
    return len(samples) >= n and all(s.ok for s in samples[-n:])


class Probe:
    """A running client probe on the lab's client host."""

    def __init__(
        self,
        lab: Lab,
        name: str,
        url: str = "http://192.0.2.10/",
        interval: float = 0.05,
        timeout: float = 0.2,
        max_seconds: float = 60.0,
    ) -> None:
        self.log = lab.log_path(f"probe-{name}")
        self.started = time.monotonic()
        count = int(max_seconds / interval) + 1
        self.proc: subprocess.Popen[bytes] = lab.spawn(
            "client",
            [sys.executable, "-I", str(PROBE_PY), "--url", url,
             "--interval", str(interval), "--timeout", str(timeout),
             "--max-seconds", str(max_seconds), "--max-count", str(count)],
            f"probe-{name}",
            net_only=True,
        )  # fmt: skip

    def samples(self) -> list[Sample]:
        """Samples so far."""
        try:
            return parse(self.log.read_text())
        except OSError:
            return []

    def answered(self, n: int = 3) -> bool:
        """True if the last ``n`` samples succeeded."""
        return ok_at_end(self.samples(), n)

    def stop(self) -> list[Sample]:
        """Stop the probe (SIGTERM, it finishes its request) and return all samples."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=2.0)
        return self.samples()


if __name__ == "__main__":
    raise SystemExit(main())
