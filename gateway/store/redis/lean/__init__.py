"""Lean auto-pipelined Redis connections for the store's hot path (issue 17).

``connection`` holds one pipelined connection (hiredis packs and parses);
``cluster`` routes commands over one such connection per cluster primary;
``autopipe`` is the store's front: one connection or the cluster router.
redis-py stays for what these do not carry: pub/sub, ``FUNCTION LOAD`` on
every primary, the cluster's slot map.
"""

from gateway.store.redis.lean.autopipe import UNAVAILABLE, AutoPipeline
from gateway.store.redis.lean.cluster import LeanCluster
from gateway.store.redis.lean.connection import LeanConnection, Options, options_from_url

__all__ = [
    "UNAVAILABLE",
    "AutoPipeline",
    "LeanCluster",
    "LeanConnection",
    "Options",
    "options_from_url",
]
