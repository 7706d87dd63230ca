"""keepalived.conf reader: `load_config(path)` / `parse_text(text)` -> `Config`.

Bad input raises `ConfigError` carrying every diagnostic (file:line:col,
source line, caret); warnings of a good config are in `Config.warnings`.
"""

from .model import ConfigError
from .parser import load_config, parse_text

__all__ = ["ConfigError", "load_config", "parse_text"]
