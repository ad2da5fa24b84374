"""The embedded backend (memory + SQLite), one module per concept.

``core`` holds the connection life cycle and the decision path's state; each
workflow that keeps state of its own (loans, commitments, outbox …) adds a
module here that works through the core's single writer thread, so its rows
can join the same transaction as the change that causes them.
"""

from gateway.store.embedded.core import EmbeddedStore
from gateway.store.embedded.status_lists import STATUS_LIST_SIZE, _StatusList

__all__ = ["STATUS_LIST_SIZE", "EmbeddedStore", "_StatusList"]
