"""Wire formats: pure byte codecs for VRRPv2, IPv4 and gratuitous ARP.

Owns: converting between bytes and values, and validating received adverts
against configuration. Must not import socket, time, asyncio, subprocess or
any I/O layer: everything here is a pure function of its arguments.

Import the modules themselves (pyvrrpd.wire.vrrp, .check, .ah, ...): the
package re-exports nothing, so `pyvrrpd release-vips` loads only the codec
it needs (README "After a crash").
"""
