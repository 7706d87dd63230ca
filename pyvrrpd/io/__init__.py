"""Host I/O for pyvrrpd: the only package that touches sockets, netlink and processes.

Modules:

* :mod:`~pyvrrpd.io.errors` -- :class:`HostError`, the one exception type raised here;
* :mod:`~pyvrrpd.io.netlink` -- interface facts, VIP add/remove, link/address events;
* :mod:`~pyvrrpd.io.vrrp_socket` -- raw protocol-112 sockets for adverts;
* :mod:`~pyvrrpd.io.garp` -- gratuitous ARP bursts on an AF_PACKET socket;
* :mod:`~pyvrrpd.io.scripts` -- running track/notify scripts, script security;
* :mod:`~pyvrrpd.io.procname` -- ``prctl(PR_SET_NAME)`` so ``pidof keepalived`` works.

Must not: hold VRRP protocol logic or decide policy; everything here is a thin,
typed, non-blocking wrapper whose failures surface as one-line HostErrors.
Submodules are imported explicitly (``from pyvrrpd.io.netlink import Netlink``)
so that importing :mod:`pyvrrpd.io` does not pay pyroute2's import time.
"""

from pyvrrpd.io.errors import HostError

__all__ = ["HostError"]
