"""gw_asgi: the gw runner loop for ASGI 3 applications (HTTP and lifespan).

gw_wsgi.py is the entry point for every Python app: it parses argv, imports
the app and decides whether it is WSGI or ASGI (--interface, or the
detection of is_asgi below). For an ASGI app it loads this file next to it
and calls serve(), which never returns. The bridge protocol, the slots and
the control socket are the same as for WSGI (proto/bridge.proto), as is the
frame codec, which this file takes from gw_wsgi.

One asyncio event loop (stdlib only, no uvloop) serves every slot: one task
per slot, one request at a time on each, so gw's queue, deadline and slowlog
per slot work unchanged and the slot count is the runner's concurrency
limit. A request that comes whole while its slot's task waits is started
in the reader's callback, as that task (Slot.eager): a hello ends there. A slot's pipes are non-blocking fds the loop watches directly (no
transports, see FrameReader): reading pauses when the app does not take its
body, and send() waits while gw cannot take more of the answer (the pipe
and 64 KiB behind it are full).

Sections, as in every gw shim where they apply: (1) constants; (2) frame
streams; (4) app detection and lifespan; (5) per-request adapter (scope,
receive, send); (6) slot loop; (7) control; (8) signals and exit; (9) serve;
(10) WebSockets (the websocket scope, on the session channel).
"""

import asyncio
import base64
import codecs
import collections
import contextvars
import faulthandler
import functools
import hashlib
import os
import signal
import socket
import struct
import sys
import time

import gw_wsgi as gw  # the running entry module (gw_wsgi registers itself)

# ---------------------------------------------------------------------------
# (1) Constants
# ---------------------------------------------------------------------------

ASGI = {'version': '3.0', 'spec_version': '2.3'}
READ_SIZE = gw.READ_BUFFER  # bytes per read(): 64 KiB stays in malloc's heap (256 KiB is an mmap)
READ_MORE = 120 << 10     # largest read for the rest of a frame (128 KiB and up is an mmap)
READ_HIGH = 1 << 20       # request bytes buffered per slot before reading pauses
WRITE_HIGH = 64 << 10     # answer bytes buffered per slot before send() waits
WRITE_LOW = 16 << 10      # ... until it is down to this
FILE_BLOCK = 256 << 10    # pathsend read size
SHUTDOWN_BOUND = 4.0      # lifespan.shutdown gets this long: gw kills 5 s after SIGTERM
CO_COROUTINE = 0x80       # inspect.CO_COROUTINE, without importing inspect
REQUEST_END_EMPTY = gw.REQUEST_END_EMPTY
CLIENT_GONE_FRAME = gw.HEADER.pack(gw.CLIENT_GONE, 0, 0, 0)
HEADER = gw.HEADER
RESPONSE_BODY, RESPONSE_END = gw.RESPONSE_BODY, gw.RESPONSE_END
# uwsgi.set_logvar()'s fields: a dict per slot task, which the app's tasks
# and threads (asgiref, anyio copy the context) share; they ride the
# request's RESPONSE_END, so fields set after the last body part are lost.
LOGVARS = contextvars.ContextVar('gw_logvars')


# ---------------------------------------------------------------------------
# (2) Frame streams over a slot's pipes
# ---------------------------------------------------------------------------

class FrameReader:
    """The request pipe of a slot as frames, read by a loop reader callback
    on the raw non-blocking fd (no transport: asyncio's pipe transport reads
    256 KiB at a time, and on glibc a buffer that size is an mmap, an mremap
    and a munmap per read, more than the rest of a hello request). One read
    usually holds a whole small request; frame() then returns without a
    wait. Reading pauses past READ_HIGH bytes not yet taken, so an app that
    does not read its body holds gw's body pump, not memory."""

    __slots__ = ('loop', 'fd', 'buf', 'pos', 'eof', 'paused', 'waiter', 'watch', 'eager')

    def __init__(self, loop, fd):
        self.loop, self.fd = loop, fd
        self.buf, self.pos = b'', 0
        self.eof = False
        self.paused = False
        self.waiter = None
        self.watch = None  # Exchange.poke while a request runs: bytes nobody waits for
        self.eager = None  # Slot.eager while the slot waits for a head: takes a whole request
        loop.add_reader(fd, self._readable)

    def _readable(self):
        size = READ_SIZE
        while True:
            try:
                data = os.read(self.fd, size)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b''
            if not data:
                self.eof = True
                self.loop.remove_reader(self.fd)
                break
            if self.pos >= len(self.buf):
                self.buf, self.pos = data, 0
            else:
                # Drop what was consumed first: buf holds one frame plus
                # one read, never the whole stream.
                self.buf, self.pos = self.buf[self.pos:] + data, 0
                if len(self.buf) > READ_HIGH:
                    self.paused = True
                    self.loop.remove_reader(self.fd)
                    break
            if len(data) < size:
                break
            # The read filled: a request bigger than one read (a 64 KiB
            # body) is read whole here, not in another pass of the loop
            # (an epoll_wait and a callback, more than the read).
            size = max(READ_SIZE, min(self._missing(), READ_MORE))
        w = self.waiter
        if w is not None:
            if self.eager is not None and self._request_in():
                self.eager()
                return
            self.waiter = None
            if not w.done():
                w.set_result(None)
        elif self.watch is not None:
            self.watch()

    def _request_in(self):
        """Whether a head and an empty REQUEST_END end what is buffered: a
        whole request, as gw writes it (head, body, end in one write), most
        likely. Only a guess, never trusted: a request started on it that
        lacks bytes waits for them as any other."""
        buf, pos = self.buf, self.pos
        return len(buf) - pos >= 16 and buf[pos] == gw.REQUEST_HEAD and buf.endswith(REQUEST_END_EMPTY)

    def _missing(self):
        """Bytes the frame at pos still lacks (0 when its header is not in)."""
        if len(self.buf) - self.pos < 8:
            return 0
        return self.pos + 8 + HEADER.unpack_from(self.buf, self.pos)[3] - len(self.buf)

    def _resume(self):
        self.paused = False
        if not self.eof:
            self.loop.add_reader(self.fd, self._readable)

    def frame_nowait(self):
        """The next whole frame (type, payload), or None."""
        buf, pos = self.buf, self.pos
        if len(buf) - pos < 8:
            return None
        ftype, _flags, _reserved, length = HEADER.unpack_from(buf, pos)
        if length > gw.MAX_PAYLOAD:
            raise gw.ProtocolError('frame of %d bytes exceeds 16 MiB' % length)
        stop = pos + 8 + length
        if len(buf) < stop:
            return None
        self.pos = stop
        if self.paused and len(buf) - stop < READ_HIGH // 2:
            self._resume()
        return ftype, buf[pos + 8:stop]

    def skip_client_gone(self):
        """Consumes a CLIENT_GONE if it is next: True if so."""
        if self.buf.startswith(CLIENT_GONE_FRAME, self.pos):
            self.pos += 8
            return True
        return False

    def skip_empty_end(self):
        """Consumes a REQUEST_END with no payload if it is next: True if so."""
        if self.buf.startswith(REQUEST_END_EMPTY, self.pos):
            self.pos += 8
            return True
        return False

    async def frame(self):
        """The next frame; EOFError once gw closed the slot."""
        while True:
            f = self.frame_nowait()
            if f is not None:
                return f
            if self.eof:
                raise EOFError
            try:
                await self.wait()
            finally:
                self.waiter = None

    def wait(self):
        """A future done when more bytes (or EOF) came, for a caller that
        found no whole frame: frame()'s wait without a coroutine, for the
        slot loop's wait for a head (one per request)."""
        if self.paused:  # one frame bigger than READ_HIGH: let it in
            self._resume()
        self.waiter = w = self.loop.create_future()
        return w

    def close(self):
        if not self.eof:
            self.eof = True
            if not self.paused:
                self.loop.remove_reader(self.fd)


class FrameWriter:
    """The answer pipe of a slot: write() goes straight to os.write on the
    non-blocking fd; what the pipe does not take waits for a loop writer
    callback. drain() waits while more than WRITE_HIGH bytes wait so."""

    __slots__ = ('loop', 'fd', 'pending', 'size', 'lost', 'waiter', 'slot')

    def __init__(self, loop, fd, slot):
        self.loop, self.fd = loop, fd
        self.slot = slot   # the PipeSlot or socket owning the fds: close() closes it
        self.pending = []  # what the pipe did not take yet, in order
        self.size = 0      # bytes in pending
        self.lost = False
        self.waiter = None

    def write(self, data):
        if self.lost:
            raise gw.GatewayGone('slot pipe is closed')
        if not self.pending:
            try:
                n = os.write(self.fd, data)
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:  # EPIPE: gw closed the slot
                self._lose()
                raise gw.GatewayGone('slot pipe is closed') from None
            if n == len(data):
                return
            data = memoryview(data)[n:]
            self.loop.add_writer(self.fd, self._writable)
        self.pending.append(data)
        self.size += len(data)

    def writev(self, parts):
        """write() for a list of buffers (not joined: a big body is not copied)."""
        if self.lost:
            raise gw.GatewayGone('slot pipe is closed')
        if not self.pending:
            try:
                n = os.writev(self.fd, parts[:gw.MAX_PENDING])
            except (BlockingIOError, InterruptedError):
                n = 0
            except OSError:
                self._lose()
                raise gw.GatewayGone('slot pipe is closed') from None
            i = 0
            while i < len(parts) and n >= len(parts[i]):
                n -= len(parts[i])
                i += 1
            if i == len(parts):
                return
            parts = parts[i:]
            if n:
                parts[0] = memoryview(parts[0])[n:]
            self.loop.add_writer(self.fd, self._writable)
        self.pending += parts
        self.size += sum(map(len, parts))

    def _writable(self):
        pending = self.pending
        try:
            n = os.writev(self.fd, pending[:gw.MAX_PENDING]) if len(pending) > 1 \
                else os.write(self.fd, pending[0])
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._lose()
            return
        self.size -= n
        while n:
            first = pending[0]
            if n >= len(first):
                n -= len(first)
                del pending[0]
            else:
                pending[0] = memoryview(first)[n:]
                n = 0
        if not pending:
            self.loop.remove_writer(self.fd)
        if self.size <= WRITE_LOW:
            self._wake()

    def _lose(self):
        if self.pending:
            self.pending.clear()
            self.size = 0
            self.loop.remove_writer(self.fd)
        self.lost = True
        self._wake()

    def _wake(self):
        w = self.waiter
        if w is not None:
            self.waiter = None
            if not w.done():
                w.set_result(None)

    async def drain(self):
        while self.size > WRITE_HIGH and not self.lost:
            self.waiter = w = self.loop.create_future()
            try:
                await w
            finally:
                self.waiter = None
        if self.lost:
            raise gw.GatewayGone('slot pipe is closed')

    def close(self):
        """Closes the slot (both fds): after the reader's close()."""
        if self.pending:
            self.pending.clear()
            self.size = 0
            self.loop.remove_writer(self.fd)
        self.lost = True
        self.slot.close()


def open_slot(loop, slot):
    """Frame reader and writer for one of gw_wsgi's open slots: a PipeSlot
    (gw's form) or a socket (the test harnesses' form, one fd both ways).
    The writer's close() closes slot."""
    if isinstance(slot, gw.PipeSlot):
        rfd, wfd = slot.rfd, slot.wfd
    else:
        rfd = wfd = slot.fileno()
    os.set_blocking(rfd, False)
    os.set_blocking(wfd, False)
    return FrameReader(loop, rfd), FrameWriter(loop, wfd, slot)


# ---------------------------------------------------------------------------
# (4) App detection and lifespan
# ---------------------------------------------------------------------------

def is_coroutine_function(obj):
    """inspect.iscoroutinefunction, unwrapping methods and partials as it
    does, without importing inspect (tens of modules) into every runner."""
    while True:
        if getattr(obj, '_is_coroutine_marker', None) is not None:  # 3.12 markcoroutinefunction
            return True
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif hasattr(obj, '__func__'):  # a bound method
            obj = obj.__func__
        else:
            break
    code = getattr(obj, '__code__', None)
    return code is not None and bool(code.co_flags & CO_COROUTINE)


def is_asgi(app):
    """NGINX Unit's rule: a coroutine function, or an object whose __call__
    is one, is an ASGI 3 app (FastAPI, Starlette, Quart, Django's
    ASGIHandler); anything else callable is WSGI."""
    return is_coroutine_function(app) or is_coroutine_function(getattr(app, '__call__', None))


class LoadFailed(Exception):
    """lifespan.startup.failed: load_message is what gw run prints."""

    def __init__(self, message):
        super().__init__(message)
        self.load_message = 'lifespan startup failed: ' + message


class Lifespan:
    """The app's lifespan scope, run as one task for the runner's life.

    Whether the app supports lifespan is told by what it does: one that
    raises or returns before asking for its first message (receive) does
    not (Django 3.2 raises ValueError at once), and gw serves it without
    lifespan, as the spec says. One that raises after taking
    lifespan.startup, or answers lifespan.startup.failed, fails to boot."""

    def __init__(self, app):
        self.app = app
        self.state = {}
        self.supported = False
        self.asked = False  # the app called receive()
        self.inbox = asyncio.Queue()
        self.outbox = asyncio.Queue()
        self.task = None

    async def receive(self):
        self.asked = True
        return await self.inbox.get()

    async def send(self, message):
        await self.outbox.put(message)

    async def _run(self):
        scope = {'type': 'lifespan', 'asgi': ASGI, 'state': self.state}
        await self.app(scope, self.receive, self.send)

    async def _step(self, event, timeout=None):
        """Sends event and waits for the app's answer: the message, or None
        when the app's lifespan task ended first."""
        await self.inbox.put({'type': event})
        got = asyncio.ensure_future(self.outbox.get())
        done, _ = await asyncio.wait((got, self.task), timeout=timeout,
                                     return_when=asyncio.FIRST_COMPLETED)
        if got in done:
            return got.result()
        got.cancel()
        return None

    async def startup(self):
        self.task = asyncio.ensure_future(self._run())
        msg = await self._step('lifespan.startup')
        if msg is not None:
            kind = msg.get('type')
            if kind == 'lifespan.startup.complete':
                self.supported = True
                return
            if kind == 'lifespan.startup.failed':
                raise LoadFailed(msg.get('message') or 'lifespan.startup.failed')
            raise LoadFailed('unexpected lifespan message %r' % kind)
        exc = self.task.exception()
        if exc is not None and self.asked:
            raise exc
        if exc is not None:
            sys.stderr.write('gw_asgi: the app does not support lifespan (%s); serving without it\n'
                             % gw._exc_line(exc))
        # Returned, or raised before taking a message: lifespan unsupported.

    async def shutdown(self):
        if not self.supported or self.task.done():
            return
        try:
            msg = await self._step('lifespan.shutdown', SHUTDOWN_BOUND)
        except BaseException as e:
            msg = {'type': 'lifespan.shutdown.failed', 'message': gw._exc_line(e)}
        if msg is None:
            exc = self.task.exception() if self.task.done() else None
            why = gw._exc_line(exc) if exc else 'no answer within %gs' % SHUTDOWN_BOUND
            msg = {'type': 'lifespan.shutdown.failed', 'message': why}
        if msg.get('type') == 'lifespan.shutdown.failed':
            sys.stderr.write('gw_asgi: lifespan shutdown failed: %s\n' % msg.get('message', ''))


# ---------------------------------------------------------------------------
# (5) Per-request adapter: scope, receive, send
# ---------------------------------------------------------------------------

HTTP_VERSIONS = {b'HTTP/1.1': '1.1', b'HTTP/1.0': '1.0', b'HTTP/2.0': '2', b'HTTP/2': '2',
                 b'HTTP/3': '3'}
EXTENSIONS = {'http.response.pathsend': {}, 'http.response.early_hint': {}}


ENV_NAMES = {}      # env name -> header name (HTTP_*), or b'' (CGI), as seen
CONTENT_HEADERS = ((b'CONTENT_TYPE', b'content-type'), (b'CONTENT_LENGTH', b'content-length'))
INTERNED = {}       # method, server name: latin-1 bytes -> str, a few of each


def header_name(name):
    """b'HTTP_X_FORWARDED_FOR' -> b'x-forwarded-for', and b'' for a CGI
    variable (SERVER_NAME, CONTENT_TYPE, ...), memoised: a request has a
    dozen env names, nearly always the same ones."""
    header = name[5:].replace(b'_', b'-').lower() if name.startswith(b'HTTP_') else b''
    if len(ENV_NAMES) < 1024:
        ENV_NAMES[name] = header
    return header


def interned(data):
    text = INTERNED.get(data)
    if text is None:
        text = data.decode('latin-1')
        if len(INTERNED) < 256:
            INTERNED[data] = text
    return text


# The variables gw's cgi.Build writes first, in its order (bridge.proto's
# env): a head whose block starts with them is read by position, not
# through a dict (build_scope); any other order takes the general path.
LEAD = [b'REQUEST_METHOD', b'SCRIPT_NAME', b'PATH_INFO', b'QUERY_STRING', b'REQUEST_URI',
        b'SERVER_PROTOCOL', b'SERVER_NAME', b'SERVER_PORT', b'REMOTE_ADDR', b'REMOTE_PORT']
LEAD_ITEMS = 2 * len(LEAD)
LEAD_NAMES = frozenset(LEAD)


def build_scope(payload, state):
    """The http scope for one REQUEST_HEAD payload, and its request id."""
    env, scheme, rid, block = gw.decode_head(payload)
    items = block.split(b'\0') if block else []
    if env:
        items += env
    if len(items) & 1:
        raise gw.ProtocolError('odd count of env items')
    if items[0:LEAD_ITEMS:2] != LEAD:
        return scope_from_env(items, scheme, rid, state)
    # gw's own head: the lead by position, then headers and CONTENT_*.
    # A lead name seen again later (only a uwsgi front's params could)
    # would win in the general path: it decides then.
    method, root, path_info, query, uri, proto, host, port, addr, rport = items[1:LEAD_ITEMS:2]
    headers, ctype, clen = [], None, None
    names = ENV_NAMES
    it = iter(items[LEAD_ITEMS:])
    for name, value in zip(it, it):
        header = names.get(name)
        if header is None:
            header = header_name(name)
        if header:
            headers.append((header, value))
        elif name == b'CONTENT_TYPE':
            ctype = value
        elif name == b'CONTENT_LENGTH':
            clen = value
        elif name in LEAD_NAMES:
            return scope_from_env(items, scheme, rid, state)
    if ctype:
        headers.append((b'content-type', ctype))
    if clen:
        headers.append((b'content-length', clen))
    q = uri.find(b'?')
    scope = {
        'type': 'http',
        'asgi': ASGI,
        'http_version': HTTP_VERSIONS.get(proto, '1.1'),
        'method': interned(method),
        'scheme': scheme or 'http',
        'path': (root + path_info if root else path_info).decode('utf-8', 'replace'),
        'raw_path': uri[:q] if q >= 0 else uri,
        'query_string': query,
        'root_path': root.decode('utf-8', 'replace') if root else '',
        'headers': headers,
        'client': (addr.decode('latin-1'), int(rport or 0)),
        'server': (interned(host), int(port or 0)),
        'extensions': EXTENSIONS,
    }
    if state is not None:
        scope['state'] = state.copy()
    return scope, rid


def scope_from_env(items, scheme, rid, state):
    """build_scope for env items in any order: the last of a name wins."""
    cgi, headers = {}, []
    it = iter(items)
    names = ENV_NAMES
    for name, value in zip(it, it):
        header = names.get(name)
        if header is None:
            header = header_name(name)
        if header:
            headers.append((header, value))
        else:
            cgi[name] = value
    for name, header in CONTENT_HEADERS:
        if cgi.get(name):
            headers.append((header, cgi[name]))
    root = cgi.get(b'SCRIPT_NAME', b'')
    uri = cgi.get(b'REQUEST_URI', b'')
    q = uri.find(b'?')
    addr = cgi.get(b'REMOTE_ADDR')
    scope = {
        'type': 'http',
        'asgi': ASGI,
        'http_version': HTTP_VERSIONS.get(cgi.get(b'SERVER_PROTOCOL'), '1.1'),
        'method': interned(cgi.get(b'REQUEST_METHOD', b'GET')),
        'scheme': scheme or 'http',
        # path is the whole decoded path, root_path (the mount) included,
        # as the ASGI spec reads today and uvicorn, hypercorn and Django do.
        'path': (root + cgi.get(b'PATH_INFO', b'')).decode('utf-8', 'replace'),
        'raw_path': uri[:q] if q >= 0 else uri,
        'query_string': cgi.get(b'QUERY_STRING', b''),
        'root_path': root.decode('utf-8', 'replace') if root else '',
        'headers': headers,
        'client': (addr.decode('latin-1'), int(cgi.get(b'REMOTE_PORT') or 0)) if addr is not None else None,
        'server': (interned(cgi.get(b'SERVER_NAME', b'localhost')), int(cgi.get(b'SERVER_PORT') or 0)),
        'extensions': EXTENSIONS,
    }
    if state is not None:
        scope['state'] = state.copy()
    return scope, rid


DISCONNECT = {'type': 'http.disconnect'}
EMPTY_BODY = {'type': 'http.request', 'body': b'', 'more_body': False}


class Exchange:
    """receive() and send() for one request on a slot."""

    __slots__ = ('reader', 'writer', 'head_only', 'body_done', 'last_given', 'aborted',
                 'slot_eof', 'head', 'started', 'complete', 'done', 'reading', 'on_wire', 'gone')

    def __init__(self, reader, writer, head_only, body_done):
        self.reader, self.writer = reader, writer
        self.head_only = head_only
        self.body_done = body_done  # REQUEST_END taken
        self.last_given = False     # the app has the body's last http.request
        self.aborted = False        # the body stopped early: the client left
        self.slot_eof = False       # gw closed the slot mid-request
        self.head = None            # RESPONSE_HEAD frame, until sent
        self.started = False        # http.response.start seen
        self.complete = False       # the last body part went out
        self.done = None            # future: the request is over (for receive)
        self.reading = False
        self.on_wire = False
        self.gone = False           # CLIENT_GONE: the client left while the app answered

    def poke(self):
        """The reader got bytes nobody waits for. Once the body is taken,
        gw sends only CLIENT_GONE during a request (bridge.proto): the
        client left, so receive() says http.disconnect and send() is
        ignored from now on, as uvicorn does. EOF is gw closing the slot."""
        reader = self.reader
        if not self.body_done:
            return  # behind the body: receive() finds it (or the drain)
        if reader.skip_client_gone():
            self.gone = self.aborted = True
            self._finish()
        elif reader.eof:
            self.slot_eof = True
            self._finish()

    async def receive(self):
        if not self.last_given and self.body_done and not self.aborted and not self.slot_eof:
            self.last_given = True
            return EMPTY_BODY
        if self.last_given or self.body_done or self.reading:
            if not self.aborted and not self.slot_eof and not self.complete:
                # Nothing more will come until the client leaves or the
                # answer is complete: wait for that.
                if self.done is None:
                    self.done = self.reader.loop.create_future()
                self.poke()  # a CLIENT_GONE read along with REQUEST_END
                await asyncio.shield(self.done)
            return DISCONNECT
        self.reading = True
        try:
            return await self._next_body()
        finally:
            self.reading = False

    async def _next_body(self):
        reader = self.reader
        while True:
            try:
                ftype, payload = reader.frame_nowait() or await reader.frame()
            except EOFError:
                self.body_done = self.slot_eof = True
                return DISCONNECT
            if ftype == gw.REQUEST_BODY:
                if not payload:
                    continue
                last = reader.skip_empty_end()
                if last:
                    self.body_done = self.last_given = True
                return {'type': 'http.request', 'body': payload, 'more_body': not last}
            if ftype != gw.REQUEST_END:
                gw.fatal(gw.EXIT_PROTOCOL, 'slot: frame type %d inside a request body' % ftype)
            self.body_done = True
            if payload and gw.decode_message(gw.REQUEST_END, payload)['aborted']:
                self.aborted = True
                self._finish()
                return DISCONNECT
            self.last_given = True
            return EMPTY_BODY

    def _finish(self):
        if self.done is not None and not self.done.done():
            self.done.set_result(None)

    async def send(self, message):
        kind = message['type']
        if self.gone and kind != 'http.response.start':
            return  # the client left: nothing more reaches it (uvicorn ignores these too)
        if kind == 'http.response.body':
            if not self.started or self.complete:
                raise RuntimeError('http.response.body %s' % (
                    'before http.response.start' if not self.started else 'after the response completed'))
            body = message.get('body', b'')
            more = message.get('more_body', False)
            await self._body(body, more)
        elif kind == 'http.response.start':
            if self.started:
                raise RuntimeError('http.response.start sent twice')
            self.started = True
            self.head = response_head(message['status'], message.get('headers') or ())
        elif kind == 'http.response.pathsend':
            if not self.started or self.complete:
                raise RuntimeError('http.response.pathsend without a started, open response')
            await self._pathsend(message['path'])
        elif kind == 'http.response.early_hint':
            self._early_hint(message.get('links') or ())
        else:
            raise RuntimeError('unexpected ASGI message %r in an http scope' % kind)

    def _early_hint(self, links):
        """EARLY_HINTS: gw sends a 103 with these Link values (bridge.proto).
        Ignored once the head went out: too late for a hint."""
        if self.on_wire or self.complete:
            return
        flat = []
        for link in links:
            if not isinstance(link, (bytes, bytearray)):
                raise TypeError('http.response.early_hint links must be bytes, not %s' % type(link).__name__)
            link = bytes(link)
            if b'\r' in link or b'\n' in link or b'\0' in link:
                raise ValueError('an early hint link holds CR, LF or NUL')
            flat += (b'link', link)
        if flat:
            self.writer.write(gw.message_frame(gw.EARLY_HINTS, {'headers': flat}))

    async def _body(self, body, more):
        if type(body) is not bytes:
            if not isinstance(body, (bytearray, memoryview)):
                raise TypeError('http.response.body body must be bytes, not %s' % type(body).__name__)
            body = bytes(body)
        head, writer = self.head, self.writer
        self.head = None
        if self.head_only:
            body = b''
        if more:
            end = b''
        else:
            logvars = LOGVARS.get(None)
            end = gw.RESPONSE_END_OK if not logvars else logvars_end(logvars)
        if len(body) < gw.SMALL_SEND:  # the common case: one buffer, one write
            if body:
                writer.write(b''.join((head or b'', HEADER.pack(RESPONSE_BODY, 0, 0, len(body)), body, end)))
                self.on_wire = True
            elif head is not None or end:
                writer.write(head + end if head is not None else end)
                self.on_wire = True
        else:  # frames of at most MAX_BODY_FRAME, written from body itself
            parts = [head] if head is not None else []
            view = memoryview(body)
            for off in range(0, len(body), gw.MAX_BODY_FRAME):
                part = view[off:off + gw.MAX_BODY_FRAME]
                parts += (HEADER.pack(RESPONSE_BODY, 0, 0, len(part)), part)
            if end:
                parts.append(end)
            writer.writev(parts)
            self.on_wire = True
        if not more:
            self.complete = True
            self._finish()
        if writer.size > WRITE_HIGH or writer.lost:
            await writer.drain()

    async def _pathsend(self, path):
        # The runner streams the file (gw has no file-sending frame yet);
        # blocks are read on the loop: a local file read is short.
        with open(path, 'rb') as f:
            while True:
                block = f.read(FILE_BLOCK)
                if not block:
                    break
                await self._body(block, True)
        await self._body(b'', False)

    def fail(self, error):
        """Ends the response with error: gw answers 500, or cuts the client
        off when the head already went out."""
        self.complete = True
        self.head = None  # not sent yet: gw answers 500
        self._finish()
        logvars = LOGVARS.get(None)
        self.writer.write(gw.message_frame(RESPONSE_END, {'error': error, 'logvars': gw.flat_logvars(logvars)}))


def logvars_end(logvars):
    frame = gw.message_frame(RESPONSE_END, {'logvars': gw.flat_logvars(logvars)})
    logvars.clear()
    return frame


def response_head(status, headers):
    """The RESPONSE_HEAD frame for an ASGI status and [(name, value), ...] of bytes."""
    if type(status) is not int or not 100 <= status <= 999:
        raise ValueError('invalid status %r' % (status,))
    # Most answers repeat a head (an app's constant headers): memoised,
    # checked once. A list item or a bytearray is unhashable: built anew.
    try:
        key = (status, tuple(headers))
        frame = HEADS.get(key)
    except TypeError:
        key = frame = None
    if frame is not None:
        return frame
    frame = build_response_head(status, headers)
    if key is not None and len(HEADS) < 256:
        HEADS[key] = frame
    return frame


HEADS = {}  # (status, tuple of headers) -> RESPONSE_HEAD frame, the first 256 seen


def build_response_head(status, headers):
    flat = []
    for item in headers:
        name, value = item
        if type(name) is not bytes or type(value) is not bytes:
            if not isinstance(name, (bytes, bytearray)) or not isinstance(value, (bytes, bytearray)):
                raise TypeError('response header %r: name and value must be bytes' % (item,))
            name, value = bytes(name), bytes(value)
        flat += (name, value)
    block = b'\0'.join(flat)
    if block.count(b'\0') != max(len(flat) - 1, 0):
        raise ValueError('a response header holds a NUL byte')
    if not flat:
        block = b''
    field = STATUS_FIELDS.get(status)
    if field is None:
        field = STATUS_FIELDS[status] = b'\x08' + gw._varint_bytes(status)  # at most 900
    return gw.response_head(field, block)


STATUS_FIELDS = {}  # status -> ResponseHead.status encoded


def log_app_error(exc, scope, rid):
    import traceback
    text = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write('gw_asgi: request %s %s%s failed:\n%s' % (
        scope.get('method'), scope.get('path'), ' (id %s)' % rid if rid else '', text))
    sys.stderr.flush()


async def handle_request(app, reader, writer, payload, state):
    """Serves one request; returns False when the slot is unusable afterwards."""
    try:
        scope, rid = build_scope(payload, state)
    except (gw.ProtocolError, ValueError) as e:
        gw.fatal(gw.EXIT_PROTOCOL, 'slot: REQUEST_HEAD: %s' % e)
    ex = Exchange(reader, writer, scope['method'] == 'HEAD', reader.skip_empty_end())
    failed = None
    reader.watch = ex.poke
    try:
        await app(scope, ex.receive, ex.send)
        if ex.gone and not ex.complete:  # it stopped as told: no error to report
            ex.complete = True
            writer.write(gw.RESPONSE_END_OK)
        elif not ex.complete:
            ex.fail('the ASGI app returned without %s the response'
                    % ('completing' if ex.started else 'starting'))
    except gw.GatewayGone:
        return False
    except BaseException as e:
        if writer.lost:
            return False
        if isinstance(e, (KeyboardInterrupt, SystemExit)):
            raise
        log_app_error(e, scope, rid)
        failed = e
        if not ex.complete:
            ex.fail(gw._exc_line(e))
    finally:
        reader.watch = None
    ex._finish()
    if failed is not None:
        gw.exit_if_out_of_memory(failed)
    if writer.lost:
        return False
    # Whatever of the body the app left unread goes, up to REQUEST_END.
    while not ex.body_done:
        try:
            ftype, _ = await reader.frame()
        except EOFError:
            return False
        if ftype == gw.REQUEST_END:
            ex.body_done = True
        elif ftype != gw.REQUEST_BODY:
            gw.fatal(gw.EXIT_PROTOCOL, 'slot: frame type %d inside a request body' % ftype)
    return not ex.slot_eof


# ---------------------------------------------------------------------------
# (6) Slot loop: one task per slot, one request at a time, started eagerly
# ---------------------------------------------------------------------------

class Slot:
    """A slot's task (run): one request at a time, each in this task, so
    gw's queue, deadline and slowlog per slot work unchanged.

    Eager start: while the task waits for a head, the reader's callback
    that finds a whole request in serves it at once (eager), in the task's
    context and as the task (asyncio's current_task(), as a Python 3.12
    eager task would be; 3.11 has none). A hello finishes there, with no
    wake-up of the task and no second pass of the loop (docs/design/hop.md,
    "eighth round"). A request that suspends is handed
    to the task (Started), which drives it on from the future it waits on;
    the task then serves the slot's next heads as before."""

    __slots__ = ('app', 'reader', 'writer', 'stats', 'i', 'lifespan', 'ws', 'logvars',
                 'task', 'ctx', 'started', 'failed', 'over')

    def __init__(self, app, reader, writer, stats, i, lifespan, ws=None):
        self.app, self.reader, self.writer = app, reader, writer
        self.stats, self.i, self.lifespan, self.ws = stats, i, lifespan, ws
        self.logvars = {}  # LOGVARS in the task's context (ctx)
        self.ctx = contextvars.copy_context()
        self.ctx.run(LOGVARS.set, self.logvars)
        self.task = None     # set by start()
        self.started = None  # Started: an eager request that suspended, for the task
        self.failed = None   # what an eager request raised (a shim bug), for the task
        self.over = False    # an eager request left the slot unusable

    def start(self, loop):
        if EAGER:
            self.task = loop.create_task(self.run(), name='slot-%d' % self.i, context=self.ctx)
        else:  # the task runs in a copy of ctx: LOGVARS holds the same dict
            self.task = self.ctx.run(loop.create_task, self.run(), name='slot-%d' % self.i)
        return self.task

    def begin(self, payload):
        """handle_request's coroutine for a head, the slot counted busy;
        end() once it is over."""
        self.stats.busy[self.i] = 1
        lifespan = self.lifespan
        return handle_request(self.app, self.reader, self.writer, payload,
                              lifespan.state if lifespan.supported else None)

    def end(self):
        self.stats.busy[self.i] = 0
        self.stats.requests[self.i] += 1
        if self.logvars:  # set after the answer ended: not the next request's
            self.logvars.clear()

    def eager(self):
        """The reader's callback, holding a whole request while the task
        waits for a head: serves it here, up to its first suspension."""
        reader, task = self.reader, self.task
        w, reader.waiter, reader.eager = reader.waiter, None, None
        try:
            _ftype, payload = reader.frame_nowait()  # a REQUEST_HEAD (_request_in)
        except gw.ProtocolError as e:
            gw.fatal(gw.EXIT_PROTOCOL, 'slot: %s' % e)
        coro = self.begin(payload)
        enter_task(reader.loop, task)
        try:
            fut = self.ctx.run(coro.send, None)
        except StopIteration as e:
            self.end()
            if e.value and reader.pos == len(reader.buf) and not w.done():
                reader.waiter, reader.eager = w, self.eager  # idle again: wait on
                return
            self.over = not e.value  # else bytes are left (a CLIENT_GONE): the task reads them
        except BaseException as e:
            self.end()
            self.failed = e
        else:
            self.started = Started(coro, fut)
        finally:
            leave_task(reader.loop, task)
        if not w.done():
            w.set_result(None)

    async def idle(self):
        """Waits for bytes when no head is in. Returns None, or whether the
        slot serves on after requests served meanwhile by eager()."""
        reader = self.reader
        w = reader.wait()
        if EAGER:
            reader.eager = self.eager
        try:
            await w
        except asyncio.CancelledError as e:
            # The task was cancelled while an eager request ran (the
            # request's own code did it): as a Task, deliver it to the
            # request at its next step; with no request, the slot ends as
            # it would have before.
            if self.started is None:
                raise
            self.started.exc = e
        finally:
            reader.eager = None
            if reader.waiter is w:
                reader.waiter = None
        started, self.started = self.started, None
        if started is not None:
            try:
                return await started
            finally:
                self.end()
        failed, self.failed = self.failed, None
        if failed is not None:
            raise failed
        if self.over:
            return False
        return None

    async def run(self):
        reader, writer, ws = self.reader, self.writer, self.ws
        busy, requests, i = self.stats.busy, self.stats.requests, self.i
        try:
            while True:
                try:
                    f = reader.frame_nowait()
                    while f is None:  # gw sends a slot's next head only after its answer
                        if reader.eof:
                            return
                        more = await self.idle()
                        if more is False:
                            return
                        f = reader.frame_nowait()
                except gw.ProtocolError as e:
                    gw.fatal(gw.EXIT_PROTOCOL, 'slot: %s' % e)
                ftype, payload = f
                if ftype == gw.WS_CONNECT and ws is not None:  # section (10)
                    busy[i] = 1
                    # The session's task outlives the slot: its set_logvar()
                    # fields must not land in the slot's next request.
                    token = LOGVARS.set({})
                    try:
                        more = await ws.connect(payload, writer)
                    finally:
                        LOGVARS.reset(token)
                        busy[i] = 0
                        requests[i] += 1
                    if not more:
                        return
                    continue
                if ftype != gw.REQUEST_HEAD:
                    if ftype == gw.CLIENT_GONE:
                        continue  # it crossed the answer's end: that request is over
                    gw.fatal(gw.EXIT_PROTOCOL, 'slot: expected REQUEST_HEAD, got frame type %d' % ftype)
                try:
                    more = await self.begin(payload)
                finally:
                    self.end()
                if not more:
                    return
        except asyncio.CancelledError:
            raise
        except BaseException:  # a shim bug: log it and close the slot, never hang it
            import traceback
            traceback.print_exc()
        finally:
            reader.close()
            writer.close()


# asyncio's own hooks for "this task runs now", which Python 3.12's eager
# tasks use; in 3.11 private but present since 3.7. Eager start needs the
# task's own context (create_task's context=, 3.11).
enter_task = getattr(asyncio.tasks, '_enter_task', None)
leave_task = getattr(asyncio.tasks, '_leave_task', None)
EAGER = sys.version_info >= (3, 11) and enter_task is not None and leave_task is not None


class Started:
    """An eager request's coroutine after its first suspension, awaited by
    the slot's task: yields the future the coroutine stopped on, then
    drives it on as a Task does (Future.__await__ returns the result once
    resumed; a cancellation is thrown in). cr_frame and cr_await are the
    coroutine's, so the slowlog's await_chain shows the request."""

    __slots__ = ('coro', 'fut', 'first', 'exc')

    def __init__(self, coro, fut):
        self.coro, self.fut = coro, fut
        self.first = True  # fut (None for a bare yield) not handed to the task yet
        self.exc = None    # thrown in at the first step instead

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self):
        return self.send(None)

    def send(self, value):
        if self.first:
            self.first = False
            if self.exc is None:
                fut, self.fut = self.fut, None
                return fut
        exc, self.exc = self.exc, None
        if exc is not None:
            return self.coro.throw(exc)
        return self.coro.send(value)

    def throw(self, *args):
        self.first, self.fut = False, None
        return self.coro.throw(*args)

    def close(self):
        self.coro.close()

    @property
    def cr_frame(self):
        return self.coro.cr_frame

    @property
    def cr_await(self):
        return self.coro.cr_await


# ---------------------------------------------------------------------------
# (7) Control: PING -> PONG; EOF ends the process at once
# ---------------------------------------------------------------------------

class Control:
    def __init__(self, sock, stats):
        self.sock, self.stats, self.buf = sock, stats, b''

    def readable(self):
        try:
            data = self.sock.recv(gw.READ_BUFFER)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b''
        if not data:
            gw.exit_now(0)  # the gateway is gone
        self.buf += data
        while len(self.buf) >= 8:
            ftype, _f, _r, length = HEADER.unpack_from(self.buf)
            if length > gw.MAX_PAYLOAD:
                gw.fatal(gw.EXIT_PROTOCOL, 'control: frame of %d bytes' % length)
            if len(self.buf) < 8 + length:
                return
            payload, self.buf = self.buf[8:8 + length], self.buf[8 + length:]
            if ftype == gw.PING:
                seq = gw.decode_message(gw.PING, payload)['seq']
                frame = gw.message_frame(gw.PONG, {'seq': seq, 'requests': sum(self.stats.requests),
                                                   'busy': sum(self.stats.busy)})
                try:
                    with gw.CONTROL_LOCK:  # uwsgi.reload() writes here too
                        self.sock.send(frame)  # a few bytes into an empty socket buffer
                except OSError:
                    pass


# ---------------------------------------------------------------------------
# (8) Signals: SIGTERM drains (lifespan shutdown), SIGUSR1 dumps task stacks
# ---------------------------------------------------------------------------

def await_chain(coro):
    """The (frame, line) of coro and of everything it awaits, outermost
    first: Task.print_stack shows only the outermost coroutine."""
    frames = []
    while coro is not None:
        frame = getattr(coro, 'cr_frame', None) or getattr(coro, 'gi_frame', None) \
            or getattr(coro, 'ag_frame', None)
        if frame is None:
            break
        frames.append((frame, frame.f_lineno))
        coro = getattr(coro, 'cr_await', None) or getattr(coro, 'gi_yieldfrom', None) \
            or getattr(coro, 'ag_await', None)
    return frames


def dump_tasks(slot_tasks, stats):
    """gw's slowlog for ASGI: the stack of every task but the idle slots',
    to stderr (gw's log)."""
    import traceback
    idle = {t for i, t in enumerate(slot_tasks) if not stats.busy[i]}
    tasks = [t for t in asyncio.all_tasks() if t not in idle]
    out = ['gw_asgi: slow request: %d tasks besides %d idle slots\n' % (len(tasks), len(idle))]
    for task in tasks:
        out.append('Task %s (most recent call last):\n' % task.get_name())
        out += traceback.StackSummary.extract(await_chain(task.get_coro())).format()
    sys.stderr.write(''.join(out))
    sys.stderr.flush()


# ---------------------------------------------------------------------------
# (9) serve
# ---------------------------------------------------------------------------

def serve(app, control, slots, stats, fail_load, sessions=None):
    """Runs the ASGI app on slots (--slot-fds specs); never returns.
    fail_load(stage) reports the exception being handled as LOAD_ERROR."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(loop, app, control, slots, stats, fail_load, sessions))
    finally:
        gw.exit_now(0)


async def _serve(loop, app, control, slots, stats, fail_load, sessions=None):
    lifespan = Lifespan(app)
    try:
        await lifespan.startup()
    except BaseException:
        fail_load('lifespan')
    pairs = [open_slot(loop, spec) for spec in slots]
    stopping = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stopping.done() or stopping.set_result(None))
    # The threads' stacks too, from C: an async view that blocks the loop
    # (sync I/O) shows there, where no task dump can run.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True, chain=True)
    ws = await open_sessions(loop, sessions, app, lifespan) if sessions is not None else None
    tasks = [Slot(app, r, w, stats, i, lifespan, ws).start(loop)
             for i, (r, w) in enumerate(pairs)]  # held here: the loop keeps only weak references
    loop.add_signal_handler(signal.SIGUSR1, dump_tasks, tasks, stats)
    try:
        control.sendall(gw.message_frame(gw.READY, {
            'protocol': gw.PROTOCOL_VERSION, 'pid': os.getpid(), 'runtime': gw.runtime_name(),
            'slots': len(slots), 'websocket': ws is not None, 'client_gone': True,
            'ws_socket': ws is not None}))
    except OSError:
        gw.exit_now(0)
    control.setblocking(False)
    gw.UWSGI['ready'] = True  # uwsgi.reload() may speak on control now
    gw.UWSGI['logvars'] = LOGVARS  # uwsgi.set_logvar() writes the slot's
    loop.add_reader(control.fileno(), Control(control, stats).readable)
    await stopping
    # gw stops a runner once its requests are done (or at its own
    # shutdown, after draining): what is still running gets a bound.
    deadline = loop.time() + SHUTDOWN_BOUND
    if ws is not None:
        # Sessions on clients' sockets (HandedSession) die with this
        # process: a close 1001 first (gw asked already at its drain;
        # not when the runner is recycled), and the clients' answers.
        for s in list(ws.handed.values()):
            s.go_away(1001, 'runner stopping')
    while (any(stats.busy) or (ws is not None and ws.handed)) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    await lifespan.shutdown()


# ---------------------------------------------------------------------------
# (10) WebSockets: gw terminates the protocol (RFC 6455 framing, ping/pong,
# the close handshake, the size limit) and hands messages over. A session
# starts on a slot (WS_CONNECT), which is free again once the app accepted
# (WS_ACCEPT) or refused (an HTTP answer); its messages then travel on the
# session channel, one per runner, each frame naming its session
# (proto/bridge.proto, docs/design/websocket.md).
# ---------------------------------------------------------------------------

WS_WRITE_HIGH = 1 << 20  # session-channel bytes gw has not taken before send() waits
WS_ID = struct.Struct('<I')
WS_CONNECTING, WS_DENYING, WS_OPEN, WS_CLOSED = range(4)
WS_EXTENSIONS = {'websocket.http.response': {}}
WS_ANC_SPACE = socket.CMSG_SPACE(4 * 4)  # one socket per read (the kernel stops a read at it); room to spare


class WebSocketClosed(OSError):
    """send() on a WebSocket that is closed (ASGI: an IOError subclass)."""


async def open_sessions(loop, fd, app, lifespan):
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    channel = SessionChannel(app, lifespan)
    # gw may send client sockets here (RAW_CONNECT, SCM_RIGHTS): reads go
    # through recvmsg on a dup of the channel (asyncio's transports drop
    # ancillary data), writes through the transport, which never reads.
    channel.rsock = sock.dup()
    transport, _ = await loop.connect_accepted_socket(lambda: channel, sock)
    # Only now: the transport adds its reader after connection_made (3.11),
    # and gw sends nothing on the channel before READY.
    transport.pause_reading()
    loop.add_reader(channel.rsock.fileno(), channel.readable)
    return channel


class WriteFlow:
    """asyncio's write flow control (pause_writing/resume_writing, from the
    transport) as something a coroutine waits on: writable() returns once
    the transport takes more. The class keeps paused and waiters."""

    def pause_writing(self):
        self.paused = True

    def resume_writing(self):
        self.paused = False
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def writable(self):
        while self.paused:
            w = asyncio.get_running_loop().create_future()
            self.waiters.append(w)
            await w


class SessionChannel(WriteFlow, asyncio.Protocol):
    """The session channel: routes gw's frames to their sessions, writes theirs."""

    def __init__(self, app, lifespan):
        self.app, self.lifespan = app, lifespan
        self.sessions = {}
        self.tasks = set()  # strong references: the loop keeps weak ones
        self.buf = bytearray()
        self.transport = None
        self.paused = self.lost = False
        self.waiters = []
        self.rsock = None
        self.fds = collections.deque()  # received with the bytes that carried them
        self.sockets = {}  # RAW_CONNECT id -> the client's socket, until its WS_CONNECT
        self.socket_waiters = {}  # id -> future: a WS_CONNECT that came first
        self.handed = {}  # session id -> HandedSession

    # asyncio.Protocol
    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=WS_WRITE_HIGH)

    def readable(self):
        try:
            data, anc, _flags, _addr = self.rsock.recvmsg(READ_SIZE, WS_ANC_SPACE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data, anc = b'', ()
        for level, kind, cdata in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                n = len(cdata) - len(cdata) % 4
                self.fds.extend(struct.unpack('%di' % (n // 4), cdata[:n]))
        if not data:
            asyncio.get_running_loop().remove_reader(self.rsock.fileno())
            self.transport.abort()  # connection_lost follows
            return
        self.data_received(data)

    def data_received(self, data):
        buf = self.buf
        buf += data
        pos, end = 0, len(buf)
        while end - pos >= 8:
            ftype, _f, _r, length = HEADER.unpack_from(buf, pos)
            if length > gw.MAX_PAYLOAD:
                gw.fatal(gw.EXIT_PROTOCOL, 'session channel: frame of %d bytes' % length)
            stop = pos + 8 + length
            if ftype == gw.RAW_CONNECT:
                stop += 1  # the byte that carried the socket
            if stop > end:
                break
            if ftype == gw.RAW_CONNECT:
                self.raw_connect(bytes(buf[pos + 8:stop - 1]))
            else:
                self.dispatch(ftype, bytes(buf[pos + 8:stop]))
            pos = stop
        del buf[:pos]

    def raw_connect(self, payload):
        if len(payload) != 4 or not self.fds:
            gw.fatal(gw.EXIT_PROTOCOL, 'session channel: RAW_CONNECT without its socket')
        rid, fd = WS_ID.unpack(payload)[0], self.fds.popleft()
        w = self.socket_waiters.pop(rid, None)
        if w is not None and not w.done():
            w.set_result(fd)
        else:
            self.sockets[rid] = fd

    async def client_socket(self, rid):
        """The socket RAW_CONNECT rid carried: gw sent it before the
        WS_CONNECT, but the loop may read the slot first."""
        fd = self.sockets.pop(rid, None)
        if fd is None:
            w = self.socket_waiters[rid] = asyncio.get_running_loop().create_future()
            fd = await w
        return socket.socket(fileno=fd)

    def connection_lost(self, exc):
        self.lost = True
        waiters, self.socket_waiters = self.socket_waiters, {}
        for w in waiters.values():
            if not w.done():
                w.set_exception(WebSocketClosed('gw closed the session channel'))
        for s in list(self.sessions.values()):
            s.disconnected(1006, '')
        self.sessions.clear()
        self.resume_writing()

    async def drain(self):
        await self.writable()  # connection_lost resumes it
        if self.lost:
            raise WebSocketClosed('gw closed the session channel')

    def dispatch(self, ftype, payload):
        if ftype == gw.WS_TEXT or ftype == gw.WS_BINARY:
            if len(payload) < 4:
                gw.fatal(gw.EXIT_PROTOCOL, 'session channel: short message frame')
            s = self.sessions.get(WS_ID.unpack_from(payload)[0])
            if s is None:
                return  # it crossed our WS_CLOSE
            if ftype == gw.WS_TEXT:  # gw checked it is UTF-8 (RFC 6455 8.1)
                s.deliver({'type': 'websocket.receive', 'text': payload[4:].decode('utf-8', 'replace')})
            else:
                s.deliver({'type': 'websocket.receive', 'bytes': payload[4:]})
        elif ftype == gw.WS_CLOSE:
            msg = gw.decode_message(gw.WS_CLOSE, payload)
            s = self.sessions.pop(msg['session'], None)
            if s is not None:
                s.disconnected(msg['code'] or 1005, msg['reason'])
            h = self.handed.get(msg['session'])
            if h is not None:  # gw is draining (1001), or its side failed
                h.go_away(msg['code'] or 1001, msg['reason'])
        else:
            gw.fatal(gw.EXIT_PROTOCOL, 'session channel: unexpected frame type %d' % ftype)

    def write(self, *parts):
        if self.lost:
            raise WebSocketClosed('gw closed the session channel')
        self.transport.writelines(parts)

    async def connect(self, payload, writer):
        """WS_CONNECT on a slot: starts the app's session and returns once the
        slot's part is over (accepted or refused); False when the slot broke."""
        try:
            scope, rid = build_scope(payload, self.lifespan.state if self.lifespan.supported else None)
            head = gw.decode_message(gw.WS_CONNECT, payload)
            sid = head['websocket_session']
        except (gw.ProtocolError, ValueError) as e:
            gw.fatal(gw.EXIT_PROTOCOL, 'slot: WS_CONNECT: %s' % e)
        del scope['method']
        scope['type'] = 'websocket'
        scope['scheme'] = 'wss' if scope['scheme'] == 'https' else 'ws'
        scope['subprotocols'] = [p.strip().decode('latin-1') for name, value in scope['headers']
                                 if name == b'sec-websocket-protocol' for p in value.split(b',') if p.strip()]
        scope['extensions'] = WS_EXTENSIONS
        if head['raw_connection']:  # the client's socket itself (HandedSession)
            sock = await self.client_socket(head['raw_connection'])
            s = HandedSession(self, sid, scope, rid, writer, sock, head['ws_max_message'], head['ws_ping_ms'])
            self.handed[sid] = s
        else:
            s = WebSocketSession(self, sid, scope, rid, writer)
            self.sessions[sid] = s
        task = asyncio.get_running_loop().create_task(s.run(self.app), name='websocket-%d' % sid)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        await s.decided
        return not writer.lost


class WebSocketSession:
    """receive() and send() for one WebSocket (ASGI websocket scope)."""

    def __init__(self, channel, sid, scope, rid, writer):
        self.ch, self.sid, self.scope, self.rid, self.writer = channel, sid, scope, rid, writer
        self.state = WS_CONNECTING
        self.inbox = collections.deque([{'type': 'websocket.connect'}])
        self.waiter = None
        self.gone = None  # the websocket.disconnect message, once gw ended the session
        self.loop = asyncio.get_running_loop()  # held: each lookup is a getpid(2)
        self.decided = self.loop.create_future()

    def deliver(self, msg):
        self.inbox.append(msg)
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    def disconnected(self, code, reason):
        self.gone = {'type': 'websocket.disconnect', 'code': code, 'reason': reason}
        self.deliver(self.gone)

    def decide(self):
        if not self.decided.done():
            self.decided.set_result(None)

    async def receive(self):
        while not self.inbox:
            if self.gone is not None or self.state == WS_CLOSED:
                return self.gone or {'type': 'websocket.disconnect', 'code': 1000, 'reason': ''}
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.inbox.popleft()

    def _slot(self, data):
        try:
            self.writer.write(data)
        except gw.GatewayGone:
            pass  # gw closed the slot: the session is over for it too

    async def send(self, message):
        t = message['type']
        if self.state == WS_OPEN:
            if self.gone is not None:
                raise WebSocketClosed('the client went away (%s)' % self.gone['code'])
            if t == 'websocket.send':
                data = message.get('bytes')
                if data is not None:
                    await self.send_message(True, data)
                else:
                    await self.send_message(False, message['text'].encode('utf-8'))
            elif t == 'websocket.close':
                self._close(message.get('code') or 1000, message.get('reason') or '')
            else:
                raise RuntimeError('unexpected ASGI message %r on an open WebSocket' % t)
        elif self.state == WS_CONNECTING:
            if t == 'websocket.accept':
                await self.accept(message)
            elif t == 'websocket.close':  # refused before accepting: 403 (ASGI spec)
                self.state = WS_CLOSED
                self._deny(403)
            elif t == 'websocket.http.response.start':
                self.state = WS_DENYING
                self._slot(response_head(message['status'], message.get('headers') or ()))
            else:
                raise RuntimeError('unexpected ASGI message %r before websocket.accept' % t)
        elif self.state == WS_DENYING and t == 'websocket.http.response.body':
            body = message.get('body') or b''
            if body:
                self._slot(HEADER.pack(RESPONSE_BODY, 0, 0, len(body)) + body)
            if not message.get('more_body'):
                self.state = WS_CLOSED
                self._slot(gw.RESPONSE_END_OK)
                self.decide()
        else:
            raise WebSocketClosed('unexpected ASGI message %r: the WebSocket is closed' % t)

    def _deny(self, status):
        self._slot(response_head(status, [(b'content-length', b'0')]) + gw.RESPONSE_END_OK)
        self.decide()

    async def send_message(self, binary, data):
        """One message to the client, through gw (the session channel)."""
        if len(data) > gw.MAX_PAYLOAD - 4:
            raise ValueError('WebSocket message of %d bytes: gw carries up to 16 MiB' % len(data))
        ftype = gw.WS_BINARY if binary else gw.WS_TEXT
        self.ch.write(HEADER.pack(ftype, 0, 0, 4 + len(data)) + WS_ID.pack(self.sid), data)
        await self.ch.drain()

    async def accept(self, message):
        headers = [b for h in (message.get('headers') or ()) for b in (bytes(h[0]), bytes(h[1]))]
        self.state = WS_OPEN
        self._slot(gw.message_frame(gw.WS_ACCEPT, {'subprotocol': message.get('subprotocol') or '',
                                                  'headers': headers}))
        self.decide()

    def _close(self, code, reason):
        self.state = WS_CLOSED
        if self.ch.sessions.pop(self.sid, None) is not None and not self.ch.lost:
            self.ch.write(gw.message_frame(gw.WS_CLOSE, {'session': self.sid, 'code': code, 'reason': reason}))

    async def run(self, app):
        failed = None
        try:
            await app(self.scope, self.receive, self.send)
        except WebSocketClosed:
            pass
        except BaseException as e:
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            log_app_error(e, self.scope, self.rid)
            failed = e
        finally:
            if self.state == WS_CONNECTING:
                self.state = WS_CLOSED
                if failed is not None:
                    self._slot(gw.message_frame(RESPONSE_END, {'error': gw._exc_line(failed)}))
                    self.decide()
                else:
                    self._deny(403)
            elif self.state == WS_DENYING:
                self.state = WS_CLOSED
                self._slot(gw.message_frame(RESPONSE_END, {'error': 'the ASGI app did not finish its denial response'}))
            elif self.state == WS_OPEN:
                if self.gone is None:
                    self._close(1011 if failed is not None else 1000, '')
                self.state = WS_CLOSED
            self.ch.sessions.pop(self.sid, None)
            self.decide()


# The handover (docs/design/websocket.md "Handover for ASGI"): on plain
# HTTP/1.1 gw sends the client's TCP socket itself (RAW_CONNECT) ahead of
# the WS_CONNECT, and the session is framed here (RFC 6455), so messages
# never cross gw. gw validated the handshake and answers any denial through
# its HTTP server, as for other sessions; once the app accepts, the 101 is
# written here and gw only counts the session until RAW_CLOSED.

WS_GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
WS_CLOSE_WAIT = 2.0  # seconds the peer gets to answer our close frame
WS_NO_LIMIT = 1 << 62
# Response headers an app may not set on the 101 (gw drops them on its path
# too: hop-by-hop and the handshake's own, bridge.hopHeaders and
# wsHandshakeHeaders).
WS_DROP_HEADERS = frozenset((b'connection', b'keep-alive', b'proxy-connection', b'te', b'trailer',
                             b'upgrade', b'sec-websocket-accept', b'sec-websocket-protocol',
                             b'sec-websocket-extensions', b'date'))
WS_BAD_HEADER = frozenset(b'\r\n\0')
UTF8_DECODER = codecs.getincrementaldecoder('utf-8')


def ws_header(op, n):
    """A server frame's header (FIN set, unmasked) for n payload bytes."""
    if n < 126:
        return bytes((op, n))
    if n < 65536:
        return struct.pack('!BBH', op, 126, n)
    return struct.pack('!BBQ', op, 127, n)


WS_XOR = [bytes(b ^ k for b in range(256)) for k in range(256)]  # translate tables: XOR with k


def ws_unmask(payload, mask):
    """XOR payload with the 4-byte mask repeated. Small payloads: one
    big-int XOR (0.5 us for 32 bytes); from 16 KiB, four strided
    bytes.translate passes, whose cost stays linear where the big int's
    conversions do not (1 MiB: 2.4 ms against 4.8, measured here)."""
    n = len(payload)
    if n < 16384:
        key = (mask * ((n >> 2) + 1))[:n]
        return (int.from_bytes(payload, 'little') ^ int.from_bytes(key, 'little')).to_bytes(n, 'little')
    out = bytearray(payload)
    for i in range(4):
        out[i::4] = payload[i::4].translate(WS_XOR[mask[i]])
    return bytes(out)


def ws_close_code_ok(code):
    """Close codes a peer may send (RFC 6455 7.4; 1012-1014 are IANA's)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def ws_wire_code(code):
    """The close code to send for the app's (gateway.clientCode)."""
    if code == 1006:
        return 1011
    if code in (1005, 1015) or not 1000 <= code < 5000:
        return 1000
    return code


class HandedSession(WebSocketSession, WriteFlow, asyncio.Protocol):
    """A WebSocket framed on the client's socket: receive() and send() as
    WebSocketSession's, and the asyncio Protocol of the socket once the app
    accepted (reads are callbacks; send() waits while the kernel's buffer
    and 64 KiB behind it are full)."""

    def __init__(self, channel, sid, scope, rid, writer, sock, max_message, ping_ms):
        super().__init__(channel, sid, scope, rid, writer)
        sock.setblocking(False)
        self.sock = sock  # until the app decides: accepted, it is the transport's
        self.max_message = max_message or WS_NO_LIMIT
        self.ping = ping_ms / 1000.0
        self.tr = None
        self.rbuf = bytearray()
        self.frag_op = 0  # opcode of the fragmented message being read, 0: none
        self.frags = []
        self.frag_len = 0
        self.dec = None  # a fragmented text message's UTF-8 decoder
        self.n_in = self.n_out = 0
        self.close_sent = self.rdone = self.paused = self.awaiting_pong = False
        self.waiters = []
        self.timer = self.ping_timer = None

    # Deciding (the slot's part)
    def decide(self):
        if self.state != WS_OPEN:
            self.ch.handed.pop(self.sid, None)
            if self.sock is not None:
                self.sock.close()  # refused: gw answers on its copy
                self.sock = None
        super().decide()

    async def send_message(self, binary, data):
        """One message framed on the client's socket itself."""
        n = len(data)
        if n < 16384:
            self.tr.write(ws_header(0x82 if binary else 0x81, n) + data)
        else:
            self.tr.writelines((ws_header(0x82 if binary else 0x81, n), data))
        self.n_out += 1
        if self.paused:
            await self.drain()

    async def accept(self, message):
        key = b''
        for name, value in self.scope['headers']:
            if name == b'sec-websocket-key':
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
        lines = [b'HTTP/1.1 101 Switching Protocols', b'Upgrade: websocket', b'Connection: Upgrade',
                 b'Sec-WebSocket-Accept: ' + accept]
        sub = message.get('subprotocol')
        if sub:
            lines.append(b'Sec-WebSocket-Protocol: ' + sub.encode('latin-1'))
        for name, value in message.get('headers') or ():
            name, value = bytes(name), bytes(value)
            if name.lower() in WS_DROP_HEADERS:
                continue
            if WS_BAD_HEADER.intersection(name + value) or not name:
                raise ValueError('invalid header %r: %r' % (name, value))
            lines.append(name + b': ' + value)
        # As gw's own 101 (h1 adds Date; X-Request-Id goes on final heads only).
        lines.append(time.strftime('Date: %a, %d %b %Y %H:%M:%S GMT', time.gmtime()).encode('ascii'))
        head = b'\r\n'.join(lines) + b'\r\n\r\n'
        sock, self.sock = self.sock, None
        self.state = WS_OPEN
        try:
            sent = sock.send(head)  # a fresh socket's buffer takes it
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = len(head)  # the client is gone: connection_lost says so
        await self.loop.connect_accepted_socket(lambda: self, sock)
        if sent < len(head):
            self.tr.write(head[sent:])
        self._slot(gw.message_frame(gw.WS_ACCEPT, {'subprotocol': sub or '', 'handed': True}))
        self.decide()

    async def drain(self):
        await self.writable()
        if self.gone is not None:
            raise WebSocketClosed('the client went away (%s)' % self.gone['code'])

    def _close(self, code, reason):
        """The app's websocket.close (or its return): our close frame, then
        the client's answer or WS_CLOSE_WAIT, then the socket closes."""
        self.state = WS_CLOSED
        self.send_close(ws_wire_code(code), reason)

    def send_close(self, code, reason):
        if self.close_sent or self.tr is None or self.tr.is_closing():
            return
        self.close_sent = True
        payload = code.to_bytes(2, 'big') + reason.encode('utf-8')[:123]
        self.tr.write(ws_header(0x88, len(payload)) + payload)
        self.timer = self.loop.call_later(WS_CLOSE_WAIT, self.tr.close)

    def go_away(self, code, reason):
        """WS_CLOSE from gw: 1001 at a drain; anything else, gw's side
        failed: the socket goes at once."""
        if self.tr is None:
            return
        if code != 1001:
            self.tr.abort()
            return
        self.send_close(1001, 'server going away')
        if self.gone is None:
            self.disconnected(1001, reason)

    def fail(self, code, reason):
        """_Fail the WebSocket Connection_ (RFC 6455 7.1.7): our close
        frame, nothing more read; the socket closes when the client
        answers with its EOF, or after WS_CLOSE_WAIT."""
        self.rdone = True
        self.send_close(code, reason)
        if self.gone is None:
            self.disconnected(code, reason)

    # asyncio.Protocol of the client's socket
    def connection_made(self, transport):
        self.tr = transport
        if self.ping > 0:
            self.ping_timer = self.loop.call_later(self.ping, self.tick)

    def tick(self):
        if self.tr.is_closing():
            return
        if self.awaiting_pong:  # none within the interval: the client is gone
            self.tr.abort()
            return
        self.awaiting_pong = True
        self.tr.write(b'\x89\x00')
        self.ping_timer = self.loop.call_later(self.ping, self.tick)

    def eof_received(self):
        return False  # the transport closes: connection_lost

    def connection_lost(self, exc):
        for t in (self.timer, self.ping_timer):
            if t is not None:
                t.cancel()
        if self.gone is None:
            self.disconnected(1006, '')
        self.resume_writing()
        self.ch.handed.pop(self.sid, None)
        if not self.ch.lost:
            self.ch.write(gw.RAW_CLOSED_COUNTS.pack(gw.RAW_CLOSED, 0, 0, 20, self.sid, self.n_in, self.n_out))

    def data_received(self, data):
        if self.rdone:
            return
        rbuf = self.rbuf
        if rbuf:
            rbuf += data
            buf = rbuf
        else:
            buf = data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n, hl = b1 & 0x7F, 2
            if n == 126:
                if end - pos < 4:
                    break
                n, hl = (buf[pos + 2] << 8) | buf[pos + 3], 4
            elif n == 127:
                if end - pos < 10:
                    break
                n, hl = int.from_bytes(buf[pos + 2:pos + 10], 'big'), 10
            bad = self.check(b0, b1, n)
            if bad is not None:
                self.fail(*bad)
                return
            start = pos + hl + 4
            if end < start + n:
                break
            payload = ws_unmask(buf[start:start + n], buf[pos + hl:start]) if n else b''
            pos = start + n
            self.frame(b0, payload)
            if self.rdone:
                return
        if buf is rbuf:
            del rbuf[:pos]
        elif pos < end:
            rbuf += buf[pos:]

    def check(self, b0, b1, n):
        """(close code, reason) for a frame header RFC 6455 forbids."""
        if not b1 & 0x80:
            return 1002, 'unmasked frame'
        if b0 & 0x70:
            return 1002, 'reserved bits set'
        op = b0 & 0x0F
        if op >= 8:
            if op > 10:
                return 1002, 'unknown opcode'
            if not b0 & 0x80:
                return 1002, 'fragmented control frame'
            if n > 125:
                return 1002, 'control frame over 125 bytes'
            return None
        if op > 2:
            return 1002, 'unknown opcode'
        if op == 0 and not self.frag_op:
            return 1002, 'continuation without a message'
        if op and self.frag_op:
            return 1002, 'new message inside a fragmented one'
        if self.frag_len + n > self.max_message:
            return 1009, 'message too big'
        return None

    def frame(self, b0, payload):
        op = b0 & 0x0F
        if op == 9:  # ping: pong with its payload
            if not self.close_sent:
                self.tr.write(ws_header(0x8A, len(payload)) + payload)
            return
        if op == 10:
            self.awaiting_pong = False
            return
        if op == 8:
            self.close_received(payload)
            return
        fin = b0 & 0x80
        if op:  # a new message
            if fin:
                self.message(op, payload)
                return
            self.frag_op = op
            self.dec = UTF8_DECODER() if op == 1 else None
        self.frag_len += len(payload)
        if self.dec is not None:
            try:
                self.frags.append(self.dec.decode(payload, bool(fin)))
            except UnicodeDecodeError:
                self.fail(1007, 'invalid UTF-8')
                return
        else:
            self.frags.append(payload)
        if fin:
            op, parts = self.frag_op, self.frags
            self.frag_op, self.frags, self.frag_len = 0, [], 0
            if op == 1:
                self.dec = None
                self.message(op, ''.join(parts))
            else:
                self.message(op, b''.join(parts))

    def message(self, op, payload):
        if self.close_sent:
            return  # after our close: dropped
        if op == 1:
            if not isinstance(payload, str):
                try:
                    payload = payload.decode('utf-8')
                except UnicodeDecodeError:
                    self.fail(1007, 'invalid UTF-8')
                    return
            self.deliver({'type': 'websocket.receive', 'text': payload})
        else:
            self.deliver({'type': 'websocket.receive', 'bytes': payload})
        self.n_in += 1

    def close_received(self, payload):
        if len(payload) == 1:
            self.fail(1002, 'close frame of 1 byte')
            return
        code, reason = 1005, ''
        if payload:
            code = int.from_bytes(payload[:2], 'big')
            if not ws_close_code_ok(code):
                self.fail(1002, 'invalid close code')
                return
            try:
                reason = payload[2:].decode('utf-8')
            except UnicodeDecodeError:
                self.fail(1007, 'invalid UTF-8 in the close reason')
                return
        self.rdone = True
        if not self.close_sent:  # the client started: echo its code
            self.close_sent = True
            echo = payload[:2]
            self.tr.write(ws_header(0x88, len(echo)) + echo)
        if self.gone is None:
            self.disconnected(code, reason)
        self.tr.close()  # the server closes the TCP connection first (RFC 6455 7.1.1)
