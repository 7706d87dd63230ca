"""The commands: `pyvrrpd` (main.py) and the keepalived-compatible entry (keepalived.py)."""

from pyvrrpd.cli.main import keepalived_main, main

__all__ = ["keepalived_main", "main"]
