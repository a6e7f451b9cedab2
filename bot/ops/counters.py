"""The Prometheus objects of one process (prometheus-client) and the ``observe_*`` helpers.

A leaf: it imports nothing of ours, so the pipeline, the scheduler's hook (``bot/app.py``) and the
``/metrics`` view (``bot/ops/metrics.py``) can all use it without importing each other.

Counters and histograms are bumped by small calls on the pipeline's hot paths (a few microseconds
each); the gauges marked "scraped" below describe stored state and are set by the ``/metrics`` view
from the database at each scrape.

What is counted:

- ``craftlink_callbacks_total{channel,outcome}`` and ``craftlink_callback_seconds{channel}``: every
  request to a platform callback route, by the status class it was answered with (``ok``,
  ``rejected`` = 4xx, ``refused`` = 503, so the platform retries, ``error`` = any other 5xx).
- ``craftlink_inbox_stored_total{channel,result}``: ``new``, ``duplicate`` or ``failed`` (DB down);
  ``craftlink_intake_batch_size``: rows per group commit.
- ``craftlink_handling_seconds{outcome}``: one inbox message's transaction; ``craftlink_inbox_wait_seconds``:
  from being stored to being handled.
- ``craftlink_sent_total{channel}``, ``craftlink_send_failures_total{channel,kind,code}``,
  ``craftlink_send_seconds{channel}``.
- ``craftlink_timers_fired_total{kind}``, ``craftlink_timer_lateness_seconds``; scraped:
  ``craftlink_timers_due``, ``craftlink_outbox_messages{state}``, ``craftlink_outbox_oldest_pending_seconds``,
  ``craftlink_cases{state}``, ``craftlink_inbox_pending``, ``craftlink_database_up``.
- scraped: ``craftlink_timers_unhandled{kind}``: due timers left pending because this process has no
  handler for their kind (should be absent; see scheduler/poller.py); ``craftlink_timers_failed{kind}``:
  timers given up after ``timers.max_attempts`` failed firings.
- ``craftlink_rate_limited_total{channel}``: times a flooding sender's messages were held back (kept
  and handled later, never dropped; handlers/ratelimit.py).
"""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Fast buckets: the targets are an ack p99 under 20 ms and an offer p95 under 100 ms.
_FAST = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_SLOW = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 900.0, 3600.0)

CALLBACKS = Counter("craftlink_callbacks", "Platform callback requests by channel and outcome",
                    ["channel", "outcome"], registry=REGISTRY)
CALLBACKS_IN_FLIGHT = Gauge("craftlink_callbacks_in_flight", "Platform callbacks received and not yet answered",
                            registry=REGISTRY)
CALLBACK_SECONDS = Histogram("craftlink_callback_seconds", "Time to answer a platform callback",
                             ["channel"], buckets=_FAST, registry=REGISTRY)
INBOX_STORED = Counter("craftlink_inbox_stored", "Inbox intake results", ["channel", "result"], registry=REGISTRY)
BATCH_SIZE = Histogram("craftlink_intake_batch_size", "Inbox rows per group commit",
                       buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500), registry=REGISTRY)
HANDLING_SECONDS = Histogram("craftlink_handling_seconds", "Handling one inbox message (one transaction)",
                             ["outcome"], buckets=_FAST, registry=REGISTRY)
INBOX_WAIT_SECONDS = Histogram("craftlink_inbox_wait_seconds", "From stored in the inbox to handled",
                               buckets=_SLOW, registry=REGISTRY)
SENT = Counter("craftlink_sent", "Messages delivered to a platform", ["channel"], registry=REGISTRY)
PASSIVE_REPLIES = Counter("craftlink_passive_replies",
                          "Replies carried in a callback response (answered/repeated) or not (late/lost)",
                          ["channel", "outcome"], registry=REGISTRY)
SEND_FAILURES = Counter("craftlink_send_failures", "Failed delivery attempts by error code",
                        ["channel", "kind", "code"], registry=REGISTRY)
SEND_SECONDS = Histogram("craftlink_send_seconds", "One platform send call", ["channel"], buckets=_FAST,
                         registry=REGISTRY)
TIMERS_FIRED = Counter("craftlink_timers_fired", "Timers fired", ["kind"], registry=REGISTRY)
TIMER_LATENESS = Histogram("craftlink_timer_lateness_seconds", "How long after due_at a timer fired",
                           buckets=_SLOW, registry=REGISTRY)
RATE_LIMITED = Counter("craftlink_rate_limited", "Times a flooding sender's messages were held back for later",
                       ["channel"], registry=REGISTRY)

TIMERS_DUE = Gauge("craftlink_timers_due", "Pending timers whose due time has passed", registry=REGISTRY)
TIMERS_UNHANDLED = Gauge("craftlink_timers_unhandled", "Due timers left pending: no handler for their kind here",
                         ["kind"], registry=REGISTRY)
TIMERS_FAILED = Gauge("craftlink_timers_failed", "Timers given up after repeated handler failures", ["kind"],
                      registry=REGISTRY)
OUTBOX = Gauge("craftlink_outbox_messages", "Outbox rows by state", ["state"], registry=REGISTRY)
OUTBOX_AGE = Gauge("craftlink_outbox_oldest_pending_seconds", "Age of the oldest pending outbox message",
                   registry=REGISTRY)
INBOX_PENDING = Gauge("craftlink_inbox_pending", "Inbox messages not yet handled", registry=REGISTRY)
CASES = Gauge("craftlink_cases", "Cases by state", ["state"], registry=REGISTRY)
DB_UP = Gauge("craftlink_database_up", "1 if the last scrape could read the database", registry=REGISTRY)


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    if status == 503:
        return "refused"
    return "rejected" if status < 500 else "error"


def observe_callback(channel: str, status: int, seconds: float) -> None:
    CALLBACKS.labels(channel, outcome_of(status)).inc()
    CALLBACK_SECONDS.labels(channel).observe(seconds)


def observe_timer(kind: str, due_at: datetime, fired_at: datetime) -> None:
    TIMERS_FIRED.labels(kind).inc()
    TIMER_LATENESS.observe(max(0.0, (fired_at - due_at).total_seconds()))
