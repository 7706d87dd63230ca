"""Health signals turned into core events, one module per kind of tracker.

Each module watches one kind of thing (interface links here; scripts,
processes and files as they move in) and feeds `TrackerChanged` events to the
instances that track it. Trackers may use pyvrrpd.io, pyvrrpd.config and
pyvrrpd.core; the shell wires them to its event loop. They decide nothing about
VRRP states or priorities: that is pyvrrpd.core.tracking.
"""
