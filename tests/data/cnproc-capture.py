"""Record the process-events connector around two `sleep` children (run as root,
in the initial network and PID namespace): tests/data/cnproc-sleep.txt.

Child A is a `sleep` started then SIGKILLed (fork, exec, exit); child B is a
python that names itself `sleep` with prctl(PR_SET_NAME) (comm), then
`renamed` (comm), then is killed (exit). Only the
subscription ack and the events naming A or B are kept, one datagram per
line in hex. Usage: python tests/data/cnproc-capture.py > tests/data/cnproc-sleep.txt
"""

from __future__ import annotations

import os
import platform
import select
import subprocess
import time

from pyvrrpd.io.cnproc import ProcConnector, decode

RENAMER = """
import ctypes, time
libc = ctypes.CDLL(None)
libc.prctl(15, b"sleep", 0, 0, 0)  # PR_SET_NAME
time.sleep(0.3)
libc.prctl(15, b"renamed", 0, 0, 0)
time.sleep(30)
"""


def main() -> None:
    conn = ProcConnector()
    raw: list[bytes] = []

    def drain(seconds: float) -> None:
        end = time.monotonic() + seconds
        poller = select.poll()
        poller.register(conn.fileno(), select.POLLIN)
        while (left := end - time.monotonic()) > 0:
            poller.poll(int(left * 1000) + 1)
            while True:
                try:
                    raw.append(conn.sock.recv(4096))
                except BlockingIOError:
                    break

    drain(0.2)
    a = subprocess.Popen(["sleep", "30"])
    drain(0.2)
    a.kill()
    a.wait()
    drain(0.2)
    b = subprocess.Popen(["python3", "-c", RENAMER])
    drain(1.0)
    b.kill()
    b.wait()
    drain(0.2)
    conn.close()
    keep = {a.pid, b.pid}
    where = "tests/data/cnproc-capture.py"
    print(f"# proc connector datagrams captured by {where} on Linux {platform.release()}")
    print(f"# capture pid {os.getpid()}, child A {a.pid} (sleep, killed),")
    print(f"# child B {b.pid} (python3 naming itself 'sleep', then 'renamed', then killed)")
    print(f"# A={a.pid} B={b.pid} PARENT={os.getpid()} COOKIE={conn.cookie}")
    for data in raw:
        ev = decode(data)
        if ev is None:
            continue
        if conn.is_ack(ev) or keep & {ev.pid, ev.tgid}:
            print(data.hex())


if __name__ == "__main__":
    main()
