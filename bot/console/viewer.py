"""Who is looking at a console page: the roles, the :class:`Viewer` and the request key that holds it.

A leaf of the console (it imports no other console module), so ``auth``, ``csrf`` and ``render`` can
all read the viewer without importing each other in a circle.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from handlers.visibility import Scope
from storage.models import StaffRole

ADMIN, STAFF, LEAD = StaffRole.ADMIN, StaffRole.STAFF, StaffRole.GROUP_LEAD
ROLES = tuple(StaffRole)
ROLE_LABELS: dict[str, str] = {ADMIN: "管理员", STAFF: "工作人员", LEAD: "组长"}


@dataclass(frozen=True)
class Viewer:
    """The signed-in staff member, as every console page sees them."""

    person_id: int
    name: str
    role: str  # a StaffRole value
    groups: tuple[str, ...]
    session_id: str

    @property
    def role_label(self) -> str:
        return ROLE_LABELS.get(self.role, self.role)

    @property
    def scope(self) -> Scope:
        """The trade groups this viewer sees and acts on (``handlers/visibility.py``)."""
        return Scope.of(self.role, self.groups)


VIEWER = web.RequestKey("console.viewer", Viewer)  # set by ``auth.guard`` for the handler it wraps
