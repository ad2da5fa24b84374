"""What the pages keep per application: templates, catalogs, staff, sessions, stats."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web
from jinja2 import Environment

from gateway.ui.i18n import Catalogs
from gateway.ui.sessions import SessionStore
from gateway.ui.stats import DecisionStats
from gateway.ui.users import StaffDirectory

__all__ = ["UI", "UiState"]


@dataclass
class UiState:
    templates: Environment
    catalogs: Catalogs
    staff: StaffDirectory
    sessions: SessionStore
    stats: DecisionStats
    idle_s: float
    max_age_s: float


UI = web.AppKey("ui", UiState)
