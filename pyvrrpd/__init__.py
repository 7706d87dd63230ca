"""pyvrrpd: a pure-Python VRRPv2 daemon compatible with keepalived's VRRP configuration."""

__version__ = "0.1.0"
