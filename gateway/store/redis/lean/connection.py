"""One Redis connection that writes every command of an event-loop pass at once.

redis-py's asyncio client spends ~65–100 µs of CPU per pipelined request
(pipeline objects, retry wrappers, per-read timeouts, Python-side bookkeeping;
DESIGN §11). Here a command costs a ``hiredis.pack_command``, a future and a
deque entry: commands issued during one loop pass are joined and written with
one ``transport.write`` on the next callback, and replies are parsed by
``hiredis.Reader`` (C) as bytes arrive and resolve the futures in FIFO order.

Replies are shaped as redis-py shapes RESP2 replies (its own response
callbacks, e.g. HGETALL → dict, SET → bool) and error replies become redis-py's
exception classes (its own error parser), so callers see what they saw before.

Failure semantics:
* a lost connection, a refused connect or a server that owes replies and sends
  nothing for ``timeout_s`` fails every command in flight with
  :class:`StoreUnavailable`; the next command opens a new connection. Commands
  are never re-sent: one that reached Redis before the loss may have run.
* back-pressure: when more than ``max_in_flight`` replies are owed, or the
  transport's write buffer is above its high-water mark, new commands wait
  until the backlog halves / the buffer drains, so a stalled Redis cannot make
  the queue (and memory) grow without bound.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import hiredis
from redis import exceptions as rex
from redis._parsers.base import BaseParser
from redis.asyncio import Redis
from redis.connection import parse_url

from gateway.store.base import StoreUnavailable

__all__ = ["LeanConnection", "Options", "options_from_url"]

# Errors a reply can carry that mean "Redis cannot answer now" (as redis-py maps them).
REPLY_UNAVAILABLE: tuple[type[Exception], ...] = (
    rex.BusyLoadingError,
    rex.MasterDownError,
    rex.ClusterDownError,
    rex.TryAgainError,
)

_NEED_MORE = object()  # hiredis.Reader.gets(): no complete reply buffered yet
_WRITE_HIGH_WATER = 1 << 20


def _resp2_callbacks() -> dict[str, Callable[..., Any]]:
    # redis-py's own RESP2 reply shaping, taken from a client that never connects.
    client = Redis(protocol=2)
    return {str(name).upper(): cb for name, cb in client.response_callbacks.items()}


CALLBACKS: Mapping[str, Callable[..., Any]] = _resp2_callbacks()


_BY_NAME: dict[Any, Callable[..., Any] | None] = {}


def reply_callback(name: Any) -> Callable[..., Any] | None:
    """redis-py's reply shaping for a command name as callers spell it (memoised)."""
    try:
        return _BY_NAME[name]
    except KeyError:
        pass
    text = name.decode() if isinstance(name, bytes) else name
    callback = CALLBACKS.get(text.upper()) if isinstance(text, str) else None
    if len(_BY_NAME) < 1024:  # command names are few; never let odd input grow this
        _BY_NAME[name] = callback
    return callback


@dataclass(frozen=True)
class Options:
    host: str = "127.0.0.1"
    port: int = 6379
    path: str = ""  # a unix socket instead of host/port
    username: str | None = None
    password: str | None = None
    db: int = 0
    ssl: ssl.SSLContext | None = None
    connect_timeout_s: float = 2.0
    timeout_s: float = 2.0
    max_in_flight: int = 16_384


def _ssl_context(query: dict[str, Any]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=query.get("ssl_ca_certs"))
    if query.get("ssl_certfile"):
        context.load_cert_chain(query["ssl_certfile"], query.get("ssl_keyfile"))
    reqs = str(query.get("ssl_cert_reqs", "required")).lower()
    if reqs in ("none", "optional"):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE if reqs == "none" else ssl.CERT_OPTIONAL
    return context


def options_from_url(url: str, **overrides: Any) -> Options:
    """The connection a ``redis://``, ``rediss://`` or ``unix://`` URL names (redis-py's parser)."""
    parsed: dict[str, Any] = parse_url(url)  # type: ignore[no-untyped-call]
    fields: dict[str, Any] = {
        "username": parsed.get("username"),
        "password": parsed.get("password"),
        "db": int(parsed.get("db") or 0),
    }
    if "path" in parsed:
        fields["path"] = parsed["path"]
    else:
        fields["host"] = parsed.get("host", "127.0.0.1")
        fields["port"] = int(parsed.get("port", 6379))
    if url.lower().startswith("rediss://"):
        fields["ssl"] = _ssl_context(parsed)
    fields.update(overrides)
    return Options(**fields)


class _Protocol(asyncio.Protocol):
    """The wire side of one connection: a write buffer, the owed replies, a parser."""

    def __init__(self, loop: asyncio.AbstractEventLoop, options: Options, translate: bool) -> None:
        self._loop = loop
        self._timeout = options.timeout_s
        self._max_in_flight = options.max_in_flight
        self._translate = translate
        self._reader = hiredis.Reader(
            protocolError=rex.InvalidResponse,
            replyError=BaseParser.parse_error,
            notEnoughData=_NEED_MORE,
        )
        self._transport: asyncio.Transport | None = None
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._owed: collections.deque[tuple[asyncio.Future[Any], Any]] = collections.deque()
        self._last_read = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        self._write_paused = False
        self.gate: asyncio.Future[None] | None = None  # set while new commands must wait
        self.lost = False

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("Redis closed the connection")

    def pause_writing(self) -> None:
        self._write_paused = True
        self._close_gate()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._maybe_open_gate()

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        reader = self._reader
        reader.feed(data)
        owed = self._owed
        while True:
            try:
                reply = reader.gets()
            except rex.InvalidResponse as exc:
                self._abort(f"Redis sent a malformed reply: {exc}")
                return
            if reply is _NEED_MORE:
                break
            if not owed:
                self._abort("Redis sent a reply nobody asked for")
                return
            future, callback = owed.popleft()
            if future.done():  # its caller was cancelled; the reply still had to be read
                continue
            if isinstance(reply, Exception):
                if self._translate and isinstance(reply, REPLY_UNAVAILABLE):
                    reply = StoreUnavailable(f"Redis is unavailable: {type(reply).__name__}")
                future.set_exception(reply)
            elif callback is None:
                future.set_result(reply)
            else:
                try:
                    future.set_result(callback(reply))
                except Exception as exc:  # a reply of a shape redis-py did not expect
                    future.set_exception(exc)
        if self.gate is not None:
            self._maybe_open_gate()

    # -- commands -------------------------------------------------------------------------
    def submit(self, command: tuple[Any, ...]) -> asyncio.Future[Any]:
        """Queue one command for this loop pass's write; its reply resolves the future."""
        future: asyncio.Future[Any] = self._loop.create_future()
        if self.lost:
            future.set_exception(StoreUnavailable("Redis closed the connection"))
            return future
        self._out.append(hiredis.pack_command(command))
        owed = self._owed
        if not owed:
            self._arm_watchdog()
        owed.append((future, reply_callback(command[0])))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)
        if len(owed) >= self._max_in_flight:
            self._close_gate()
        return future

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self._transport is not None and not self.lost:
            out, self._out = self._out, []
            self._transport.write(b"".join(out))

    # -- timeouts, back-pressure, failure --------------------------------------------------
    def _arm_watchdog(self) -> None:
        # The wait for a reply starts now; only silence for a whole timeout fails it.
        self._last_read = self._loop.time()
        if self._watchdog is None:
            self._watchdog = self._loop.call_at(self._last_read + self._timeout, self._check)

    def _check(self) -> None:
        self._watchdog = None
        if not self._owed or self.lost:
            return
        deadline = self._last_read + self._timeout
        if self._loop.time() >= deadline:
            self._abort(f"Redis did not answer within {self._timeout:g} s")
        else:
            self._watchdog = self._loop.call_at(deadline, self._check)

    def _close_gate(self) -> None:
        if self.gate is None:
            self.gate = self._loop.create_future()

    def _maybe_open_gate(self) -> None:
        if self.gate is None:
            return
        # A lost connection opens it too: its waiters go on to reconnect.
        if self.lost or (not self._write_paused and len(self._owed) <= self._max_in_flight // 2):
            gate, self.gate = self.gate, None
            if not gate.done():
                gate.set_result(None)

    def _abort(self, reason: str) -> None:
        self._fail(reason)
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, reason: str) -> None:
        self.lost = True
        self._out = []
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        owed, self._owed = self._owed, collections.deque()
        for future, _ in owed:
            if not future.done():  # an exception each: tracebacks must not pile up on one
                future.set_exception(StoreUnavailable(reason))
        self._maybe_open_gate()

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def owed_futures(self) -> list[asyncio.Future[Any]]:
        return [future for future, _ in self._owed]


class LeanConnection:
    """A lazily (re)connected pipelined connection to one Redis server.

    ``translate`` turns error replies that mean "unavailable" (LOADING,
    MASTERDOWN, …) into :class:`StoreUnavailable`; the cluster router keeps
    them raw to act on TRYAGAIN and CLUSTERDOWN itself.
    """

    def __init__(self, options: Options, translate: bool = True) -> None:
        self._options = options
        self._translate = translate
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Task[_Protocol] | None = None
        self._closed = False

    @property
    def options(self) -> Options:
        return self._options

    async def execute(self, *command: Any) -> Any:
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connected()
        while proto.gate is not None:
            await asyncio.shield(proto.gate)
            if proto.lost:
                proto = await self._connected()
        return await proto.submit(command)

    async def execute_asking(self, *command: Any) -> Any:
        """``ASKING`` then the command, back to back (a cluster slot in migration)."""
        proto = self._proto
        if proto is None or proto.lost:
            proto = await self._connected()
        asking = proto.submit(("ASKING",))
        reply = proto.submit(command)
        done = await asyncio.gather(asking, reply, return_exceptions=True)
        for result in done:
            if isinstance(result, BaseException):
                raise result
        return done[1]

    async def _connected(self) -> _Protocol:
        if self._closed:
            raise StoreUnavailable("the Redis store is closed")
        if self._connecting is None:
            self._connecting = asyncio.get_running_loop().create_task(self._connect())
        task = self._connecting
        try:
            # Shielded: one caller's cancellation must not abort the others' connect.
            return await asyncio.shield(task)
        finally:
            if task.done() and self._connecting is task:
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        opts = self._options
        proto = _Protocol(loop, opts, self._translate)
        try:
            async with asyncio.timeout(opts.connect_timeout_s):
                if opts.path:
                    await loop.create_unix_connection(lambda: proto, opts.path)
                else:
                    await loop.create_connection(lambda: proto, opts.host, opts.port, ssl=opts.ssl)
                # AUTH and SELECT go first, pipelined; no other command is queued yet.
                setup = []
                if opts.password is not None:
                    auth = ("AUTH", opts.username, opts.password) if opts.username else None
                    setup.append(proto.submit(auth or ("AUTH", opts.password)))
                if opts.db:
                    setup.append(proto.submit(("SELECT", opts.db)))
                for reply in setup:
                    await reply
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            proto.close()
            raise StoreUnavailable(f"cannot connect to Redis: {type(exc).__name__}") from exc
        except rex.AuthenticationError as exc:
            proto.close()
            raise StoreUnavailable("Redis refused the credentials") from exc
        except rex.ResponseError as exc:
            proto.close()
            raise StoreUnavailable(f"Redis refused the connection set-up: {exc}") from exc
        except BaseException:
            proto.close()
            raise
        if self._closed:
            proto.close()
            raise StoreUnavailable("the Redis store is closed")
        self._proto = proto
        return proto

    async def close(self, drain_s: float = 2.0) -> None:
        """Wait (a little) for replies still owed, then close the connection."""
        self._closed = True
        proto, self._proto = self._proto, None
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if proto is None:
            return
        owed = proto.owed_futures()
        if owed:
            await asyncio.wait(owed, timeout=drain_s)
        proto.close()
