"""How operators and service managers drive and observe the running daemon.

The control socket and `pyvrrpd status`, reload (the config diff and carrying
it out), keepalived-format dumps and log lines, notify hooks/FIFO/mail, pid
files, the run-state record behind `release-vips`, systemd's notify socket.
These modules serve the daemon in pyvrrpd.shell; they decide nothing about VRRP.
"""
