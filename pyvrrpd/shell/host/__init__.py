"""What the daemon installs on the host beyond its VRRP sockets.

Virtual addresses and their GARPs, accept-mode firewall rules, static and
virtual routes/rules, virtual MAC interfaces, unicast send targets and the AH
socket: each module owns one kind of host state, its setup and its removal.
"""
