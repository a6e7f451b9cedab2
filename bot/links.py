"""Where the service's own pages are: the :class:`handlers.services.Links` that ``bot/app.py`` injects.

The routes are bot/'s (``bot/console/login.py``, ``bot/console/downloads.py``); the domain only asks
for a URL carrying a token or a signed month, so it never spells a path.
"""

from __future__ import annotations

from dataclasses import dataclass

LOGIN_LINK_ROUTE = "/console/login/{token}"
MONTHLY_REPORT_ROUTE = "/reports/monthly/{month}.xlsx"


@dataclass(frozen=True)
class ServiceLinks:
    public_url: str  # server.public_url: how people's phones reach us

    def _absolute(self, path: str) -> str:
        return f"{self.public_url.rstrip('/')}{path}"

    def console_login(self, token: str) -> str:
        return self._absolute(LOGIN_LINK_ROUTE.format(token=token))

    def monthly_report(self, month: str, exp: int, sig: str) -> str:
        return self._absolute(MONTHLY_REPORT_ROUTE.format(month=month) + f"?exp={exp}&sig={sig}")
