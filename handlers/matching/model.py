"""The matcher's value types: what callers pass in and get back (re-exported by the package)."""

from __future__ import annotations

from dataclasses import dataclass

MODES = ("online", "onsite", "training")


@dataclass(frozen=True)
class CraftsmanProfile:
    """The static, indexed part of a craftsman."""

    key: str  # stable id: str(person_id) in the app, the roster's 编号 in the CLI
    code: str  # roster 编号
    name: str
    group: str  # trade group (may be a name NOT in the taxonomy: still matches on skills/bio)
    skills: tuple[str, ...]
    region: str  # free text like "浙江省宁波市北仑区", "宁波北仑" or "上海 闵行"
    bio: str = ""
    solved_texts: tuple[str, ...] = ()  # texts of cases they solved


@dataclass(frozen=True)
class CraftsmanStatus:
    """The dynamic part, read from the DB at dispatch time. The defaults are a neutral newcomer."""

    available: bool = True
    on_leave: bool = False
    open_load: int = 0  # open cases assigned now
    recent_offers: int = 0  # offers received in the last 7 days (fairness)
    offers_total: int = 0  # response history: offers ever received
    offers_answered: int = 0  # ... of which answered (accepted or declined) in time
    avg_rating: float | None = None  # 1..5


@dataclass(frozen=True)
class MatchRequest:
    text: str
    region: str = ""
    mode: str = "online"  # online | onsite | training


@dataclass(frozen=True)
class GroupGuess:
    group: str
    score: float  # share of the trade-word evidence that points to this group, 0..1
    terms: tuple[str, ...]  # which (standard) words matched


@dataclass(frozen=True)
class Classification:
    guesses: tuple[GroupGuess, ...]  # best first; empty when nothing matched
    confident: bool  # False when nothing matched or the best is close to the second

    @property
    def best(self) -> GroupGuess | None:
        return self.guesses[0] if self.guesses else None


@dataclass(frozen=True)
class MatchResult:
    key: str
    code: str
    name: str
    group: str
    score: float
    reasons: tuple[str, ...]  # Chinese, e.g. "命中：模具、崩刃", "小组：模具制造", "同区：北仑区", "在办 1 件"
