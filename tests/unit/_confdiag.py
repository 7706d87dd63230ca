"""Config-reader test helpers: parse a text and list its diagnostics as
`line:col: message`, the way the config tests compare them."""

from __future__ import annotations

import pytest

from pyvrrpd.config import ConfigError, parse_text
from pyvrrpd.config.model import Config


def parse(text: str, source: str = "k.conf") -> Config:
    return parse_text(text, source)


def errors(text: str, source: str = "k.conf") -> list[str]:
    """The errors of a text that must be refused."""
    with pytest.raises(ConfigError) as ei:
        parse(text, source)
    return [f"{d.loc.line}:{d.loc.col}: {d.message}" for d in ei.value.errors]


def warnings(cfg: Config, *, silent: bool | None = None) -> list[str]:
    """The warnings of a parsed config; `silent`: only those keepalived does
    (False) or does not (True) count."""
    return [
        f"{d.loc.line}:{d.loc.col}: {d.message}"
        for d in cfg.warnings
        if silent is None or d.keepalived_silent == silent
    ]
