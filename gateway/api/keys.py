"""Typed application state keys."""

from __future__ import annotations

from aiohttp import web

from gateway.runtime import Gateway

__all__ = ["GATEWAY"]

GATEWAY = web.AppKey("gateway", Gateway)
