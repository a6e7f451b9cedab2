"""Config loading for the running service; the typed settings live in ``handlers.settings``.

They live there because handlers read them (offer timeout, points rules) and ``handlers/`` must not
import ``bot/``.
"""

from handlers.settings import ConfigError, Settings, load_settings, parse_settings

__all__ = ["ConfigError", "Settings", "load_settings", "parse_settings"]
