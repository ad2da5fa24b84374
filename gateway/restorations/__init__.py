"""Restoring credit standing (错误惩戒 → 恢复信誉): which decisions a repair ends.

A constrained decision is linked to the records it rested on; when a record is
repaired, delisted or found wrong after an objection, its links move to a log
the credit office reads, so each partner that applied a measure can be told.
"""
