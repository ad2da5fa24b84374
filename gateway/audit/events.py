"""Records that are not decisions: every other use of credit data and every change.

Kinds written by this package's callers (docs/audit.md lists them all):
``consent_recorded``, ``consent_revoked``, ``credit_event_received``,
``token_introspected``, ``feedback_received``, ``policy_reloaded``,
``policy_reload_refused``, ``key_added``, ``key_activated``, ``key_retired``,
``keys_reloaded``. Other workflows add theirs (``commitment_*``, ``loan_*``)
through ``Store.append_audit`` the same way.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gateway.ids import ordered_id
from gateway.store.base import AuditEvent

__all__ = ["GATEWAY_ACTOR", "audit_event"]

# The partner field of a change nobody called for over HTTP (a SIGHUP reload).
GATEWAY_ACTOR = "gateway"


def audit_event(
    kind: str,
    partner: str,
    now: dt.datetime,
    *,
    scene: str | None = None,
    purpose: str | None = None,
    subject: str | None = None,
    staff_id: str | None = None,
    outcome: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """An event record stamped like a decision's (ISO time, UTC) with a fresh record id."""
    return AuditEvent(
        kind=kind,
        time=now.astimezone(dt.UTC).isoformat(timespec="seconds"),
        partner=partner,
        record_id=ordered_id("rec_"),
        scene=scene,
        purpose=purpose,
        subject=subject,
        staff_id=staff_id,
        outcome=outcome,
        detail=detail,
    )
