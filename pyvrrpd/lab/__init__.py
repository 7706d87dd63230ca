"""The netns lab: the HAProxy + keepalived guide reproduced in network namespaces.

Modules: :mod:`~pyvrrpd.lab.netns` (hosts, links, teardown),
:mod:`~pyvrrpd.lab.services` (backends, HAProxy, the pluggable VRRP daemon),
:mod:`~pyvrrpd.lab.probe` (client availability), :mod:`~pyvrrpd.lab.walkthrough`
(the guide's section 6), :mod:`~pyvrrpd.lab.demo` (``python -m pyvrrpd.lab``).
``holder.py``, ``backend.py`` and ``probe.py`` also run as plain scripts inside
the lab hosts. ``files/`` holds the guide's configs, adapted to the lab addresses.
Needs root; touches only the namespaces it creates.
"""
