"""Host errors raised by ``pyvrrpd.io``.

Owns: :class:`HostError`, the single exception type that the I/O layer lets
reach its callers, and :func:`describe_oserror`, which turns an ``OSError`` (or
a pyroute2 ``NetlinkError``, which carries ``code`` instead of ``errno``) into a
short operator-readable phrase.

Must not: import sockets, pyroute2 or anything that performs I/O.
"""

from __future__ import annotations

import errno
import os

__all__ = ["HostError", "describe_oserror", "errno_of"]


class HostError(Exception):
    """A failure talking to the host (kernel, interfaces, processes).

    The message is one line, meant to be logged as is, e.g.
    ``interface 'eth9' not found``. The original exception, if any, is chained
    as ``__cause__`` so debugging keeps the traceback.
    """

    def __init__(self, message: str, *, errno_code: int | None = None) -> None:
        # One line, always: operators grep logs line by line.
        super().__init__(" ".join(message.split()))
        self.errno_code = errno_code


def errno_of(exc: BaseException) -> int | None:
    """The errno carried by an OSError or a pyroute2 NetlinkError, if any."""
    code = getattr(exc, "errno", None)
    if not isinstance(code, int):
        # pyroute2's NetlinkError keeps the errno in ``code`` (and its
        # ``errno`` attribute is unset because it is not an OSError subclass
        # with positional args).
        code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def describe_oserror(exc: BaseException) -> str:
    """A short phrase for ``exc``: ``"EPERM: Operation not permitted"``."""
    code = errno_of(exc)
    if code is None:
        text = str(exc).strip() or type(exc).__name__
        return " ".join(text.split())
    name = errno.errorcode.get(code, f"errno {code}")
    return f"{name}: {os.strerror(code)}"
