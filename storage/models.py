"""SQLAlchemy 2 models: the whole persistent state of craftlink.

Times are stored as naive UTC and read back as aware UTC (:class:`UTCDateTime`), so SQLite and
PostgreSQL behave the same; they are shown in the configured zone (``Asia/Shanghai``) only at the edge.
The schema is created by Alembic (``storage/migrations``), never by ``create_all``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    select,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

CASE_NUMBER_OFFSET = 1000  # case #1001 is row 1: short numbers people can type


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, naive UTC in the column."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


class Base(AsyncAttrs, DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Role(enum.StrEnum):
    ENTERPRISE = "enterprise"
    CRAFTSMAN = "craftsman"
    STAFF = "staff"


class StaffRole(enum.StrEnum):
    """A staff member's console and visibility role (``staff.staff_role``; the stored values)."""

    ADMIN = "admin"
    STAFF = "staff"
    GROUP_LEAD = "group_lead"  # sees and acts on their trade groups only (handlers/visibility.py)


class CaseState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for staff review
    APPROVED = "approved"
    REJECTED = "rejected"
    MATCHING = "matching"
    OFFERED = "offered"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"  # craftsman said 完成; waiting for the rating
    CLOSED = "closed"
    CANCELLED = "cancelled"
    ESCALATED = "escalated"  # nobody took it: staff must act


OPEN_STATES = (
    CaseState.SUBMITTED,
    CaseState.APPROVED,
    CaseState.MATCHING,
    CaseState.OFFERED,
    CaseState.ASSIGNED,
    CaseState.IN_PROGRESS,
    CaseState.RESOLVED,
    CaseState.ESCALATED,
)
ACTIVE_STATES = (CaseState.ASSIGNED, CaseState.IN_PROGRESS)  # a craftsman is working on it


class Mode(enum.StrEnum):
    ONLINE = "online"  # 线上指导
    ONSITE = "onsite"  # 现场服务
    TRAINING = "training"  # 培训讲座


class OfferState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    TAKEN = "taken"  # another craftsman accepted first
    WITHDRAWN = "withdrawn"  # staff re-dispatched or the case was cancelled


class Enterprise(Base):
    __tablename__ = "enterprises"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    region: Mapped[str] = mapped_column(String(100), default="")
    industry: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]


class Person(Base):
    """Anyone who talks to the bot. Role-specific data lives in Craftsman / StaffMember / enterprise_id."""

    __tablename__ = "people"
    id: Mapped[int] = mapped_column(primary_key=True)
    role: Mapped[str] = mapped_column(String(20), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    phone: Mapped[str | None] = mapped_column(String(40), default=None)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), default=None, index=True)
    current_case_id: Mapped[int | None] = mapped_column(default=None)  # no FK: people and cases point at each other
    quiet_start: Mapped[str | None] = mapped_column(String(5), default=None)  # "22:00"; None = default
    quiet_end: Mapped[str | None] = mapped_column(String(5), default=None)
    quiet_off: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]


class Identity(Base):
    """How a person is reached on one channel: (channel, platform user id) → person."""

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("channel", "channel_user_id", name="uq_identity_channel_user"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20))
    channel_user_id: Mapped[str] = mapped_column(String(128))
    last_seen_at: Mapped[datetime | None] = mapped_column(default=None)  # also opens the WeChat 48 h window
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)  # e.g. DingTalk sessionWebhook + expiry


# Who (channel, user id) is: run for every handled and every sent message, so built once — building a
# statement costs more Python than SQLite takes to run it (docs/benchmarks.md, "Fourth session").
IDENTITY_OF = select(Identity).where(Identity.channel == bindparam("channel"),
                                     Identity.channel_user_id == bindparam("user_id"))


class Craftsman(Base):
    __tablename__ = "craftsmen"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)  # the roster's 编号
    trade_group: Mapped[str] = mapped_column(String(60), index=True)
    skills: Mapped[list[Any]] = mapped_column(default=list)
    region: Mapped[str] = mapped_column(String(100), default="")
    bio: Mapped[str] = mapped_column(Text, default="")
    available: Mapped[bool] = mapped_column(Boolean, default=True)
    leave_until: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]


class StaffMember(Base):
    __tablename__ = "staff"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    login: Mapped[str | None] = mapped_column(String(60), unique=True, default=None)
    staff_role: Mapped[str] = mapped_column(String(20), default=StaffRole.STAFF.value)  # a StaffRole value
    groups: Mapped[list[Any]] = mapped_column(default=list)  # trade groups of a group lead
    password_hash: Mapped[str | None] = mapped_column(String(200), default=None)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    enterprise_id: Mapped[int | None] = mapped_column(ForeignKey("enterprises.id"), default=None, index=True)
    requester_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    craftsman_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None, index=True)
    state: Mapped[str] = mapped_column(String(20), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    trade_group: Mapped[str] = mapped_column(String(60), default="")
    group_confidence: Mapped[float] = mapped_column(Float, default=0.0)
    mode: Mapped[str] = mapped_column(String(20), default=Mode.ONLINE.value)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    address: Mapped[str] = mapped_column(String(300), default="")
    region: Mapped[str] = mapped_column(String(100), default="")
    photos: Mapped[list[Any]] = mapped_column(default=list)
    match_reasons: Mapped[list[Any]] = mapped_column(default=list)  # [{person_id, score, reasons}]
    menu_item_id: Mapped[int | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None] = mapped_column(default=None)
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    closed_at: Mapped[datetime | None] = mapped_column(default=None)
    last_activity_at: Mapped[datetime | None] = mapped_column(default=None)
    appointment_at: Mapped[datetime | None] = mapped_column(default=None)
    awaiting_enterprise: Mapped[bool] = mapped_column(Boolean, default=False)
    help_hours: Mapped[float | None] = mapped_column(Float, default=None)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)
    close_reason: Mapped[str] = mapped_column(String(200), default="")

    @property
    def number(self) -> int:
        return self.id + CASE_NUMBER_OFFSET


class CaseEvent(Base):
    """The audit trail: every transition and every notable act on a case."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    actor_label: Mapped[str] = mapped_column(String(100), default="")  # "系统" or the person's name
    from_state: Mapped[str | None] = mapped_column(String(20), default=None)
    to_state: Mapped[str | None] = mapped_column(String(20), default=None)
    detail: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("case_id", "craftsman_id", name="uq_offer_case_craftsman"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    state: Mapped[str] = mapped_column(String(20), default=OfferState.PENDING.value)
    rank: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    reasons: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    reason: Mapped[str] = mapped_column(String(300), default="")


class RelayedMessage(Base):
    __tablename__ = "relayed_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    from_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    to_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    media_path: Mapped[str | None] = mapped_column(String(500), default=None)
    at: Mapped[datetime]


class Feedback(Base):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    rating: Mapped[int | None] = mapped_column(Integer, default=None)  # None = closed unrated
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime]


class PointsEntry(Base):
    """Append-only ledger: points are summed, never updated in place."""

    __tablename__ = "points_ledger"
    id: Mapped[int] = mapped_column(primary_key=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    points: Mapped[float] = mapped_column(Float)
    rule: Mapped[str] = mapped_column(String(60))
    note: Mapped[str] = mapped_column(String(300), default="")
    at: Mapped[datetime]


class Dialog(Base):
    """Multi-turn dialog state, keyed by the person (so it can cross channels)."""

    __tablename__ = "dialogs"
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), primary_key=True)
    flow: Mapped[str] = mapped_column(String(40))
    step: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class InboxState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"  # gave up after retries; staff told


class InboxMessage(Base):
    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("channel", "platform_msg_id", name="uq_inbox_channel_msg"),
        Index("ix_inbox_pending", "state", "conversation", "id"),
        # A conversation's history, newest first: the flood check (handlers/ratelimit.py) reads the N-th
        # earlier message, the failure apology (handlers/failures.py) the burst's earlier failures.
        Index("ix_inbox_conversation", "conversation", "id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    platform_msg_id: Mapped[str] = mapped_column(String(128))
    conversation: Mapped[str] = mapped_column(String(160))
    sender: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # media ref, location, adapter extras
    received_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default=InboxState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(default=None)  # retry backoff
    handled_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str] = mapped_column(Text, default="")


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    HELD = "held"  # platform refused for now (e.g. outside the WeChat 48 h window); staff told
    DEAD = "dead"  # could not be delivered; staff told


class OutboxMessage(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None, index=True)
    channel: Mapped[str] = mapped_column(String(20))
    address: Mapped[str] = mapped_column(String(128))  # platform user id
    conversation: Mapped[str] = mapped_column(String(160), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # OutgoingMessage.to_json()
    state: Mapped[str] = mapped_column(String(20), default=OutboxState.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str] = mapped_column(Text, default="")
    platform_msg_id: Mapped[str | None] = mapped_column(String(128), default=None)


class TimerState(enum.StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    FAILED = "failed"  # its handler kept raising: given up after retries; staff told once


class Timer(Base):
    """A due time as data: created in the transaction of what it belongs to, fired once by the poller."""

    __tablename__ = "timers"
    __table_args__ = (Index("ix_timers_due", "state", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(20), default=TimerState.PENDING.value)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), default=None, index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), default=None)
    offer_id: Mapped[int | None] = mapped_column(ForeignKey("offers.id"), default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed firings so far (backoff moves due_at)
    last_error: Mapped[str] = mapped_column(Text, default="")


class JobRun(Base):
    """Cron work claims ``(job, period)`` before it sends, so N instances send each digest once."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(40))
    period: Mapped[str] = mapped_column(String(40))
    claimed_at: Mapped[datetime]
    instance: Mapped[str] = mapped_column(String(80), default="")
    done_at: Mapped[datetime | None] = mapped_column(default=None)


class ChannelToken(Base):
    """Access tokens shared by all senders; ``lock_until`` lets only one process refresh."""

    __tablename__ = "channel_tokens"
    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    token: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    lock_until: Mapped[datetime | None] = mapped_column(default=None)
    lock_owner: Mapped[str] = mapped_column(String(80), default="")


class MenuItem(Base):
    """菜单式服务: a service a craftsman publishes for enterprises to order."""

    __tablename__ = "menu_items"
    id: Mapped[int] = mapped_column(primary_key=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    title: Mapped[str] = mapped_column(String(100))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class LoginToken(Base):
    """One-time console login links sent to a staff member's chat."""

    __tablename__ = "login_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)


class LoginThrottle(Base):
    """Console sign-in failures per (login, client address): each failure doubles the wait before the next try."""

    __tablename__ = "login_throttle"
    login: Mapped[str] = mapped_column(String(60), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    next_allowed_at: Mapped[datetime | None] = mapped_column(default=None)
    updated_at: Mapped[datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Mobilisation(Base):
    """应急动员: a call to every available craftsman of a group, open until ``deadline``."""

    __tablename__ = "mobilisations"
    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    trade_group: Mapped[str] = mapped_column(String(60))
    region: Mapped[str] = mapped_column(String(100), default="")
    text: Mapped[str] = mapped_column(Text, default="")
    deadline: Mapped[datetime]
    created_at: Mapped[datetime]
    reported_at: Mapped[datetime | None] = mapped_column(default=None)


class MobilisationReply(Base):
    __tablename__ = "mobilisation_replies"
    __table_args__ = (UniqueConstraint("mobilisation_id", "craftsman_id", name="uq_mobilisation_reply"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    mobilisation_id: Mapped[int] = mapped_column(ForeignKey("mobilisations.id"), index=True)
    craftsman_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    at: Mapped[datetime]
