"""The Redis and Redis Cluster backends, one module per concept.

``core`` holds the client, the auto-pipeline, the server-side functions and
the decision path's keys; each workflow that keeps state of its own adds a
module here that issues its commands through the core's pipeline.
"""

from gateway.store.redis.core import RedisStore

__all__ = ["RedisStore"]
