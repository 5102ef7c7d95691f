"""gw_wsgi: the gw runner shim that hosts one WSGI (PEP 3333) application.

gw starts it once per worker process:

    python3 -u gw_wsgi.py --app APP [--callable NAME] [--dir DIR] [--name NAME]
                          --control-fd 3 --slot-fds 4:5,6:7

and talks to it over the bridge protocol (proto/bridge.proto, the authority
for framing and messages). A slot is a pipe pair R:W (gw's form: requests
in on R, responses out on W) or one socket N (the test harnesses' form).
Each slot gets one thread that serves its
requests one at a time; the main thread answers PINGs on the control socket
and exits the moment that socket reaches EOF (the gateway is gone).

    python3 gw_wsgi.py --selftest DIR

checks the frame codec against golden frames (NAME.bin + NAME.json).

Sections, in the order every gw shim uses: (1) constants; (2) frame codec;
(3) argv; (4) app loading; (5) per-request adapter; (6) slot loop;
(7) control; (8) owner watcher; (9) main; then this shim's own: (10)
WebSockets for WSGI apps; (11) the uwsgi module (uWSGI's Python API).
Stdlib only, CPython 3.9+.
"""

import faulthandler
import importlib
import importlib.machinery
import importlib.util
import os
import signal
import socket
import struct
import sys
import threading

# ---------------------------------------------------------------------------
# (1) Constants and protocol version
# ---------------------------------------------------------------------------

PROTOCOL_VERSION = 2

# FrameType (bridge.proto).
REQUEST_HEAD = 1
REQUEST_BODY = 2
REQUEST_END = 3
RESPONSE_HEAD = 4
RESPONSE_BODY = 5
RESPONSE_END = 6
WS_CONNECT = 7    # WebSockets (gw_asgi.py section 10; docs/design/websocket.md)
WS_ACCEPT = 8
WS_TEXT = 9
WS_BINARY = 10
WS_CLOSE = 11
RAW_CONNECT, RAW_HIJACKED, RAW_CLOSED = 12, 13, 23  # Rack, PSGI; ASGI's handed-over WebSockets (gw_asgi.py)
RAW_CLOSED_COUNTS = struct.Struct('<BBHIIQQ')  # RAW_CLOSED: header, id, messages in, messages out (ASGI)
CLIENT_GONE = 14  # gateway -> runner (slot): the client left (gw_asgi.py; discarded here)
EARLY_HINTS = 15  # runner -> gateway (slot): a 103 before the head (gw_asgi.py)
READY = 16
LOAD_ERROR = 17
PING = 18
PONG = 19
RELOAD_APP = 20   # runner -> gateway (control): uwsgi.reload() (section 11)
CACHE_REQUEST = 21  # uwsgi.cache_* on the cache channel (section 11)
CACHE_ANSWER = 22
BODY_FRAMES = (REQUEST_BODY, RESPONSE_BODY)

HEADER = struct.Struct('<BBHI')  # type, flags, reserved, payload length
MAX_PAYLOAD = 16 << 20           # bridge.proto: at most 16 MiB per frame
MAX_BODY_FRAME = 1 << 20         # app chunks are split into frames this big
READ_BUFFER = 64 << 10           # recv() size per socket
FILE_BLOCK = 256 << 10           # read size for our own wsgi.file_wrapper
MAX_PENDING = 256                # buffers per sendmsg() when coalescing
SMALL_SEND = 64 << 10            # less than this goes out joined, in one send()
RESPONSE_END_OK = HEADER.pack(RESPONSE_END, 0, 0, 0)
REQUEST_END_EMPTY = HEADER.pack(REQUEST_END, 0, 0, 0)

EXIT_PROTOCOL = 3  # a slot or control stream is desynced
EXIT_LOAD = 4      # LOAD_ERROR was sent: the app cannot be loaded
EXIT_MEMORY = 5    # MemoryError under limits.memory (proc.ExitMemory)

DEFAULT_CALLABLES = ('application', 'app')
OPTIONS = ('app', 'callable', 'dir', 'name', 'control-fd', 'slot-fds', 'selftest',
           'interface', 'wsgi-threads', 'session-fd', 'worker-id', 'numproc', 'lock-fd', 'cache-fd', 'spooler')
INTERFACES = ('auto', 'wsgi', 'asgi')
USAGE = ('usage: gw_wsgi.py --app APP [--callable NAME] [--dir DIR] [--name NAME]'
         ' [--interface auto|wsgi|asgi] [--wsgi-threads N]'
         ' --control-fd FD --slot-fds R:W|FD[,...] [--session-fd FD]\n'
         '                 [--worker-id N] [--numproc N] [--lock-fd FD] [--cache-fd FD] [--spooler DIR]\n'
         '       gw_wsgi.py --selftest DIR\n')

# Field kinds of the flat schema. Varint kinds sort below length-delimited ones.
UINT32, UINT64, BOOL, STRING, BYTES, REPEATED_BYTES = range(6)
KIND_DEFAULTS = {UINT32: 0, UINT64: 0, BOOL: False, STRING: '', BYTES: b''}

# Every message in bridge.proto: frame type -> fields in field-number order.
SCHEMAS = {
    REQUEST_HEAD: ((1, 'env', REPEATED_BYTES), (2, 'url_scheme', STRING),
                   (3, 'request_id', STRING), (4, 'env_block', BYTES),
                   (5, 'websocket_session', UINT32)),
    REQUEST_END: ((1, 'aborted', BOOL), (2, 'reason', STRING)),
    RESPONSE_HEAD: ((1, 'status', UINT32), (2, 'headers', REPEATED_BYTES),
                    (3, 'header_block', BYTES)),
    RESPONSE_END: ((1, 'error', STRING), (2, 'logvars', REPEATED_BYTES)),
    READY: ((1, 'protocol', UINT32), (2, 'pid', UINT32), (3, 'runtime', STRING),
            (4, 'slots', UINT32), (5, 'websocket', BOOL), (6, 'raw', BOOL),
            (7, 'client_gone', BOOL), (8, 'raw_socket', BOOL), (9, 'ws_socket', BOOL)),
    EARLY_HINTS: ((2, 'headers', REPEATED_BYTES),),
    CLIENT_GONE: (),
    LOAD_ERROR: ((1, 'stage', STRING), (2, 'message', STRING), (3, 'detail', STRING)),
    PING: ((1, 'seq', UINT64),),
    PONG: ((1, 'seq', UINT64), (2, 'requests', UINT64), (3, 'busy', UINT32)),
    WS_ACCEPT: ((1, 'subprotocol', STRING), (2, 'headers', REPEATED_BYTES), (3, 'handed', BOOL)),
    WS_CLOSE: ((1, 'session', UINT32), (2, 'code', UINT32), (3, 'reason', STRING)),
    RELOAD_APP: (),
    CACHE_REQUEST: ((1, 'op', UINT32), (2, 'key', BYTES), (3, 'value', BYTES), (4, 'expires', UINT64)),
    CACHE_ANSWER: ((1, 'ok', BOOL), (2, 'value', BYTES)),
}
# WS_CONNECT is a REQUEST_HEAD; to an ASGI runner that said ws_socket it may
# also name the client's socket and the limits the runner then enforces.
SCHEMAS[WS_CONNECT] = SCHEMAS[REQUEST_HEAD] + ((6, 'raw_connection', UINT32),
                                               (7, 'ws_max_message', UINT64), (8, 'ws_ping_ms', UINT32))
# frame type -> {field tag (number << 3 | the wire type its kind uses): (name, kind)}
DECODE_TAGS = {t: {num << 3 | (2 if kind >= STRING else 0): (name, kind)
                   for num, name, kind in fields} for t, fields in SCHEMAS.items()}
# Header names must be RFC 9110 tokens; values must hold no CTL except HTAB.
TOKEN_BYTES = (b"!#$%&'*+-.^_`|~0123456789"
               b'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz')
VALUE_BYTES = bytes([9] + list(range(32, 127)) + list(range(128, 256)))


# ---------------------------------------------------------------------------
# (2) Frame codec: 8-byte header + payload; hand-written proto3 for the flat
#     messages (canonical encoding: field-number order, defaults omitted).
# ---------------------------------------------------------------------------

class ProtocolError(ValueError):
    """A frame or message that breaks bridge.proto; the stream is desynced."""


def _varint_bytes(value):
    if value < 0x80:
        if value < 0:
            raise ValueError('negative varint %d' % value)
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _uvarint(buf, pos):
    """Decodes the varint at buf[pos]; returns (value, next pos)."""
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise ProtocolError('varint longer than 10 bytes')


ENCODE_PLAN = {t: tuple((name, kind, _varint_bytes(num << 3 | (2 if kind >= STRING else 0)))
                        for num, name, kind in fields)
               for t, fields in SCHEMAS.items()}


def encode_message(ftype, msg):
    """Encodes dict msg as the proto3 message of frame type ftype."""
    out = []
    append = out.append
    for name, kind, tag in ENCODE_PLAN[ftype]:
        value = msg.get(name)
        if not value:
            continue  # proto3 default: omitted
        if kind == REPEATED_BYTES:
            for item in value:
                append(tag)
                append(_varint_bytes(len(item)))
                append(item)
        elif kind >= STRING:
            if kind == STRING:
                # Go rejects invalid UTF-8 in strings: lone surrogates become '?'.
                value = value.encode('utf-8', 'replace')
            append(tag)
            append(_varint_bytes(len(value)))
            append(value)
        else:
            if kind == BOOL:
                value = 1
            elif value >> (32 if kind == UINT32 else 64):
                raise ValueError('%s=%d out of range' % (name, value))
            append(tag)
            append(_varint_bytes(value))
    return b''.join(out)


def decode_message(ftype, payload):
    """Decodes a proto3 payload into a dict holding every field (defaults filled in).

    Unknown fields, and known ones with an unexpected wire type, are skipped
    by wire type (0, 1, 2, 5), as proto3 requires for forward compatibility."""
    tags = DECODE_TAGS.get(ftype)
    if tags is None:
        raise ProtocolError('frame type %d carries no message' % ftype)
    msg = {name: [] if kind == REPEATED_BYTES else KIND_DEFAULTS[kind]
           for name, kind in tags.values()}
    buf, pos, end = payload, 0, len(payload)
    try:
        while pos < end:
            key, pos = _uvarint(buf, pos)
            if key < 8:
                raise ProtocolError('field number 0')
            field = tags.get(key)
            wire = key & 7
            if wire == 2:
                size, pos = _uvarint(buf, pos)
                stop = pos + size
                if stop > end:
                    raise ProtocolError('length-delimited field overruns the message')
                if field is not None:
                    name, kind = field
                    data = buf[pos:stop]
                    if kind == REPEATED_BYTES:
                        msg[name].append(data)
                    else:
                        msg[name] = data.decode('utf-8', 'replace') if kind == STRING else data
                pos = stop
            elif wire == 0:
                value, pos = _uvarint(buf, pos)
                if field is not None:
                    name, kind = field
                    msg[name] = (value != 0 if kind == BOOL else
                                 value & 0xFFFFFFFF if kind == UINT32 else value)
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise ProtocolError('unsupported wire type %d' % wire)
    except IndexError:
        raise ProtocolError('truncated message') from None
    if pos > end:
        raise ProtocolError('truncated message')
    return msg


def encode_frame(ftype, payload):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError('frame payload of %d bytes exceeds 16 MiB' % len(payload))
    return HEADER.pack(ftype, 0, 0, len(payload)) + payload


def message_frame(ftype, msg):
    return encode_frame(ftype, encode_message(ftype, msg))


def read_frame(rfile):
    """Reads one frame from a buffered reader; returns (type, payload bytes).

    Raises EOFError when the stream ends (cleanly or mid-frame: either way the
    gateway is gone) and ProtocolError for an oversized frame."""
    try:
        head = rfile.read(8)
        if len(head) == 8:
            ftype, _flags, _reserved, length = HEADER.unpack(head)
            if length > MAX_PAYLOAD:
                raise ProtocolError('frame of %d bytes exceeds 16 MiB' % length)
            payload = rfile.read(length) if length else b''
            if len(payload) == length:
                return ftype, payload
    except OSError:
        pass
    raise EOFError


class SlotReader:
    """read_frame for a slot socket, buffered here, not by makefile(): one
    recv() usually holds a whole small request, parsed with no call into io."""

    __slots__ = ('sock', 'buf', 'pos')

    def __init__(self, sock):
        self.sock, self.buf, self.pos = sock, b'', 0

    def frame(self):
        buf, pos = self.buf, self.pos
        try:
            while len(buf) - pos < 8:
                buf, pos = buf[pos:] + self._recv(READ_BUFFER), 0
            ftype, _flags, _reserved, length = HEADER.unpack_from(buf, pos)
            if length > MAX_PAYLOAD:
                raise ProtocolError('frame of %d bytes exceeds 16 MiB' % length)
            start, stop = pos + 8, pos + 8 + length
            if stop - len(buf) > READ_BUFFER:  # a big payload: the rest of it alone
                self.buf, self.pos, payload = b'', 0, buf[start:]
                while len(payload) < length:  # MSG_WAITALL stops short at a signal
                    payload += self._recv(length - len(payload), socket.MSG_WAITALL)
                return ftype, payload
            if len(buf) < stop and pos:
                # Drop what was consumed first: buf must hold one frame plus
                # one read, never the whole stream (a 100 MiB upload through
                # an ever-growing buf went quadratic and stalled).
                buf, start, stop = buf[pos:], 8, 8 + length
            while len(buf) < stop:
                buf += self._recv(READ_BUFFER)
        except OSError:
            raise EOFError from None
        self.buf, self.pos = buf, stop
        return ftype, buf[start:stop]

    def _recv(self, size, flags=0):
        data = self.sock.recv(size, flags)
        if not data:
            raise EOFError
        return data


class PipeSlot:
    """A slot over two pipes, with the socket methods the slot code uses.
    gw uses pipes because each has a wait queue per direction: reading a
    response never wakes this slot's thread idle in read() on the request
    pipe, as reading a socketpair does (gw issue 14)."""

    __slots__ = ('rfd', 'wfd')

    def __init__(self, rfd, wfd):
        self.rfd, self.wfd = rfd, wfd

    def recv(self, size, flags=0):
        if not flags & socket.MSG_WAITALL:
            return os.read(self.rfd, size)
        buf = bytearray(size)  # MSG_WAITALL: all size bytes unless EOF
        got = 0
        with memoryview(buf) as view:
            while got < size:
                n = os.readv(self.rfd, [view[got:]])
                if not n:
                    break
                got += n
        del buf[got:]
        return buf

    def sendmsg(self, bufs):
        return os.writev(self.wfd, bufs)

    def sendall(self, data):
        # EPIPE (gw closed the slot) raises BrokenPipeError: Python ignores SIGPIPE.
        n = os.write(self.wfd, data)
        if n < len(data):
            with memoryview(data) as view:
                while n < len(view):
                    n += os.write(self.wfd, view[n:])

    def close(self):
        for fd in (self.rfd, self.wfd):
            try:
                os.close(fd)
            except OSError:
                pass


def open_slot(spec):
    """A slot from its --slot-fds entry: (R, W) pipe fds, or a socket fd."""
    fds = spec if type(spec) is tuple else (spec,)
    for fd in fds:
        os.set_blocking(fd, True)  # an inherited fd may still be O_NONBLOCK
        os.set_inheritable(fd, False)  # programs the app runs must not hold the slot
    return PipeSlot(*spec) if type(spec) is tuple else socket.socket(fileno=spec)


def parse_slot_fd(item):
    """'R:W' -> (R, W); 'N' -> N."""
    r, colon, w = item.partition(':')
    return (int(r), int(w)) if colon else int(item)


def selftest(directory):
    """Checks decode and encode against golden frames; returns the exit status."""
    import json
    names = sorted({f.rsplit('.', 1)[0] for f in os.listdir(directory)
                    if f.endswith(('.bin', '.json'))})
    failed = skipped = 0
    for name in names:
        try:
            with open(os.path.join(directory, name + '.json'), encoding='utf-8') as f:
                case = json.load(f)
            with open(os.path.join(directory, name + '.bin'), 'rb') as f:
                frame = f.read()
            skip = _golden_skip(case)
            problems = [] if skip else _check_golden(case, frame)
        except Exception as e:  # a missing or malformed file fails its case
            skip, problems = None, [_exc_line(e)]
        if skip:
            skipped += 1
            print('SKIP %s: %s' % (name, skip))
        elif problems:
            failed += 1
            print('FAIL %s: %s' % (name, '; '.join(problems)))
    if skipped:
        print('%d skipped' % skipped)
    print('%d passed, %d failed' % (len(names) - failed - skipped, failed))
    return 0 if failed == 0 else 1


def _golden_skip(case):
    """Why this shim skips a golden case, or None. Raw connections (Rack's
    hijack, PSGI's psgix.io) are not Python's: gw sends RAW_CONNECT, and
    raw_connection in a head, only to a runner whose READY says raw, and
    takes RAW_HIJACKED and RAW_CLOSED only from one; ours never says it."""
    if case['type'] == RAW_CLOSED and case.get('body'):
        return None  # with message counts: gw_asgi.py's handed-over WebSockets
    if case['type'] in (RAW_CONNECT, RAW_HIJACKED, RAW_CLOSED):
        return 'raw connections are Rack and PSGI only (READY raw is never set here)'
    if 'raw_connection' in (case.get('fields') or {}) and case['type'] != WS_CONNECT:
        return 'raw_connection goes only to READY raw runners (Rack, PSGI)'
    return None


def _check_golden(case, frame):
    ftype = case['type']
    if ftype in (WS_TEXT, WS_BINARY):
        return _check_session_frame(case, frame)
    if ftype == RAW_CLOSED:  # gw_asgi.py HandedSession.connection_lost packs it
        sin, sout = struct.unpack('<QQ', case['body'].encode('latin-1'))
        got = RAW_CLOSED_COUNTS.pack(RAW_CLOSED, 0, 0, 20, case['id'], sin, sout)
        return [] if got == frame else ['encode: %s, want %s' % (got.hex(), frame.hex())]
    if ftype in BODY_FRAMES:
        want = payload = case.get('body', '').encode('latin-1')
    else:
        want = _json_message(ftype, case.get('fields') or {})
        payload = encode_message(ftype, want)
    problems = []
    header, expected = HEADER.unpack_from(frame), (ftype, 0, 0, len(frame) - 8)
    if header != expected:
        problems.append('header (type, flags, reserved, length) %r, want %r' % (header, expected))
    if ftype in BODY_FRAMES:
        if frame[8:] != want:
            problems.append('decode: body %r, want %r' % (frame[8:72], want[:64]))
    else:
        got = decode_message(ftype, frame[8:])
        problems += ['decode: %s = %r, want %r' % (k, got[k], want[k]) for k in want if got[k] != want[k]]
        fast = ftype == REQUEST_HEAD and decode_head(frame[8:])  # the slot loop's own codec
        if fast and (list(fast[0]),) + fast[1:] != tuple(got.values())[:4]:
            problems.append('decode_head: %r' % (fast,))
        if ftype == RESPONSE_HEAD and want['status'] and not want['headers'] and frame != \
                response_head(b'\x08' + _varint_bytes(want['status']), want['header_block']):
            problems.append('response_head: differs')
    encoded = encode_frame(ftype, payload)
    if encoded != frame and not case.get('decode_only'):  # decode_only: non-canonical input
        problems.append('encode: ' + _differs(encoded, frame))
    return problems


def _differs(got, want):
    at = next(i for i, (a, b) in enumerate(zip(got + b'\0', want + b'\1')) if a != b)
    return 'differs at byte %d: got %s, want %s' % (at, got[at:at + 16].hex(), want[at:at + 16].hex())


def _check_session_frame(case, frame):
    """WS_TEXT, WS_BINARY (raw: u32le session id, then the message) through
    SessionChannel's own send and reader, over a socketpair. gw_asgi.py
    writes and reads them with the same struct calls, inline."""
    sid, want = case['id'], case.get('body', '').encode('latin-1')
    problems = []
    header, expected = HEADER.unpack_from(frame), (case['type'], 0, 0, len(frame) - 8)
    if header != expected:
        problems.append('header (type, flags, reserved, length) %r, want %r' % (header, expected))
    gw_end, ours = socket.socketpair()
    with gw_end:
        ch = SessionChannel(ours.detach(), 1)
        ch.send(case['type'], sid, want)
        ch.sock.shutdown(socket.SHUT_WR)
        encoded = b''.join(iter(lambda: gw_end.recv(READ_BUFFER), b''))
        if encoded != frame:
            problems.append('encode: SessionChannel.send: ' + _differs(encoded, frame))
        got = []
        ch.sessions[sid] = _GoldenSession(got)
        gw_end.sendall(frame)
        gw_end.shutdown(socket.SHUT_WR)
        ch.run()  # returns at EOF
        ch.sock.close()
    if len(got) != 1:
        problems.append('decode: SessionChannel delivered %d messages, want 1' % len(got))
    elif got[0] != want:
        problems.append('decode: message ' + _differs(got[0], want))
    return problems


class _GoldenSession:
    """Takes what SessionChannel.run routes to a session, for the selftest."""

    def __init__(self, got):
        self.inbox = self
        self.put = got.append

    def gone(self, code, reason):
        pass


def _json_message(ftype, fields):
    """Turns golden JSON fields (bytes as latin-1 strings) into a message dict.
    Field names are the proto names; protojson's lowerCamelCase is accepted too."""
    if ftype not in SCHEMAS:
        raise ValueError('unknown frame type %r' % ftype)
    msg, seen = {}, set()
    for _, name, kind in SCHEMAS[ftype]:
        parts = name.split('_')
        camel = parts[0] + ''.join(w.title() for w in parts[1:])
        seen.update((name, camel))
        value = fields.get(name, fields.get(camel))
        if value is None:
            value = [] if kind == REPEATED_BYTES else KIND_DEFAULTS[kind]
        elif kind == REPEATED_BYTES:
            value = [item.encode('latin-1') for item in value]
        elif kind == BYTES:
            value = value.encode('latin-1')
        elif kind == STRING:
            value = value.encode('latin-1').decode('utf-8')
        elif kind == BOOL:
            value = bool(value)
        else:
            value = int(value)  # protojson writes uint64 as a decimal string
        msg[name] = value
    if set(fields) - seen:
        raise ValueError('unknown fields %s' % sorted(set(fields) - seen))
    return msg


# ---------------------------------------------------------------------------
# (3) argv parsing
# ---------------------------------------------------------------------------

class UsageError(Exception):
    """Bad command line (LOAD_ERROR stage "args")."""


def parse_args(argv):
    """Parses --opt VALUE / --opt=VALUE pairs into a dict keyed by option name."""
    opts = dict.fromkeys(o.replace('-', '_') for o in OPTIONS)
    i = 0
    while i < len(argv):
        name, eq, value = argv[i].partition('=')
        if name in ('-h', '--help'):
            sys.stdout.write(USAGE)
            sys.exit(0)
        if not name.startswith('--') or name[2:] not in OPTIONS:
            raise UsageError('unknown argument %r' % argv[i])
        if not eq:
            i += 1
            if i == len(argv):
                raise UsageError('%s needs a value' % name)
            value = argv[i]
        opts[name[2:].replace('-', '_')] = value
        i += 1
    if opts['selftest'] is not None:
        return opts
    if not opts['app']:
        raise UsageError('--app is required')
    try:
        opts['control_fd'] = int(opts['control_fd'])
        opts['slot_fds'] = [parse_slot_fd(item) for item in opts['slot_fds'].split(',')]
    except (AttributeError, TypeError, ValueError):
        raise UsageError('--control-fd FD and --slot-fds R:W|FD[,...] are required') from None
    if (opts['interface'] or 'auto') not in INTERFACES:
        raise UsageError('--interface must be auto, wsgi or asgi, not %r' % opts['interface'])
    if opts['wsgi_threads'] is not None:
        if not opts['wsgi_threads'].isdigit() or int(opts['wsgi_threads']) < 1:
            raise UsageError('--wsgi-threads must be a whole number >= 1')
        opts['wsgi_threads'] = int(opts['wsgi_threads'])
    for key in ('session_fd', 'worker_id', 'numproc', 'lock_fd', 'cache_fd'):
        if opts[key] is not None:
            if not opts[key].isdigit():
                raise UsageError('--%s must be a whole number' % key.replace('_', '-'))
            opts[key] = int(opts[key])
    fds = [opts['control_fd']] + [opts[k] for k in ('session_fd', 'lock_fd', 'cache_fd') if opts[k] is not None]
    for spec in opts['slot_fds']:
        fds += spec if type(spec) is tuple else (spec,)
    if len(set(fds)) != len(fds) or min(fds) < 0:
        raise UsageError('file descriptors must be distinct and >= 0: %r' % fds)
    return opts


def control_fd_hint(argv):
    """The --control-fd value when the rest of argv could not be parsed."""
    for i, arg in enumerate(argv):
        value = arg[len('--control-fd='):] if arg.startswith('--control-fd=') else (
            argv[i + 1] if arg == '--control-fd' and i + 1 < len(argv) else None)
        if value is not None and value.isdigit():
            return int(value)
    return None


# ---------------------------------------------------------------------------
# (4) App loading
# ---------------------------------------------------------------------------

def import_app(target):
    """Imports APP; returns (module, callable name from "module:name" or None).

    A file path is executed as module "__gw_app__" with its directory first on
    sys.path (never as "__main__", so an `if __name__ == "__main__": app.run()`
    block stays quiet). Otherwise APP is "package.module[:name]", imported with
    the cwd (DIR, once main has changed into it) first on sys.path."""
    if ':' not in target and (os.path.isfile(target) or os.sep in target
                              or target.endswith(('.py', '.wsgi'))):
        path = os.path.abspath(target)
        sys.path.insert(0, os.path.dirname(path))
        name = '__gw_app__'
        loader = importlib.machinery.SourceFileLoader(name, path)
        module = importlib.util.module_from_spec(
            importlib.util.spec_from_file_location(name, path, loader=loader))
        sys.modules[name] = module  # dataclasses, pickle and friends look it up
        try:
            loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module, None
    modname, _, attr = target.partition(':')
    sys.path.insert(0, os.getcwd())
    return importlib.import_module(modname), attr or None


def find_callable(module, names):
    """The first of names (dotted paths allowed) that exists in module."""
    for name in names:
        obj = module
        try:
            for part in name.split('.'):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        if not callable(obj):
            raise TypeError('%s in %s is a %s, not a WSGI or ASGI callable'
                            % (name, _module_label(module), type(obj).__name__))
        return obj
    raise AttributeError('no WSGI or ASGI callable named %s in %s' % (
        ' or '.join(repr(n) for n in names), _module_label(module)))


def _module_label(module):
    return getattr(module, '__file__', None) or module.__name__


def _exc_line(exc):
    """One line naming an exception, like the last line of a traceback."""
    cls = type(exc)
    name = cls.__qualname__
    if cls.__module__ not in ('builtins', '__main__'):
        name = cls.__module__ + '.' + name
    try:
        text = str(exc).strip()
    except Exception:
        text = '<unprintable %s>' % name
    return '%s: %s' % (name, text.splitlines()[0]) if text else name


# ---------------------------------------------------------------------------
# (5) Per-request adapter: environ, wsgi.input, start_response/write, body
# ---------------------------------------------------------------------------

class GatewayGone(ConnectionError):
    """The slot socket broke while the response was being written."""


def fatal(status, message):
    sys.stderr.write('gw_wsgi: %s\n' % message)
    exit_now(status)


def memory_limited():
    """The address-space limit gw set (limits.memory), or None."""
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (ImportError, OSError, ValueError):
        return None
    return None if soft == resource.RLIM_INFINITY else soft


MEMORY_LIMIT = memory_limited()


def exit_if_out_of_memory(exc):
    """After the app's MemoryError was answered: under limits.memory the
    runner exits, as its heap may be half-updated; gw starts a fresh one
    and counts the exit as the limit's."""
    if MEMORY_LIMIT is not None and isinstance(exc, MemoryError):
        fatal(EXIT_MEMORY, 'MemoryError: the app reached limits.memory (address space %d bytes); exiting' % MEMORY_LIMIT)


class InputStream:
    """wsgi.input: the body read lazily from REQUEST_BODY frames up to REQUEST_END.

    Reads never go past CONTENT_LENGTH when it is set. An aborted body makes
    the read that reaches REQUEST_END raise OSError, and every later one too."""

    __slots__ = ('_reader', '_buf', '_pos', '_left', 'ended', 'slot_eof', '_error')

    def __init__(self, reader, length):
        self._reader = reader
        self._buf = b''
        self._pos = 0
        self._left = length     # bytes the app may still read; None: until the end
        self.ended = False      # REQUEST_END (or EOF) seen
        self.slot_eof = False   # the gateway closed the slot mid-request
        self._error = None      # why the body stopped early

    def _next_frame(self):
        """Payload of the next REQUEST_BODY frame, or None at REQUEST_END/EOF."""
        try:
            ftype, payload = self._reader.frame()
        except EOFError:
            self.ended = self.slot_eof = True
            self._error = 'gateway closed the slot'
            return None
        except ProtocolError as e:
            fatal(EXIT_PROTOCOL, 'slot: %s' % e)
        if ftype == REQUEST_BODY:
            return payload
        if ftype != REQUEST_END:
            fatal(EXIT_PROTOCOL, 'slot: frame type %d inside a request body' % ftype)
        self.ended = True
        if payload:  # empty: not aborted
            try:
                end = decode_message(REQUEST_END, payload)
            except ProtocolError as e:
                fatal(EXIT_PROTOCOL, 'slot: REQUEST_END: %s' % e)
            if end['aborted']:
                self._error = end['reason'] or 'aborted'
        return None

    def _fill(self):
        """Loads the next non-empty frame into the buffer; False at end of body."""
        while not self.ended:
            payload = self._next_frame()
            if payload:
                self._buf, self._pos = payload, 0
                return True
        if self._error is not None:
            raise OSError('request body aborted: %s' % self._error)
        return False

    def _take(self, limit):
        """Up to limit (> 0) buffered bytes, refilling once; b'' at end of body."""
        buf, pos = self._buf, self._pos
        if pos >= len(buf):
            if not self._fill():
                return b''
            buf, pos = self._buf, 0
        if pos == 0 and limit >= len(buf):
            data = buf  # the whole frame: no copy
        else:
            data = buf[pos:pos + limit]
        self._pos = pos + len(data)
        if self._left is not None:
            self._left -= len(data)
        return data

    def read(self, size=-1):
        left = self._left
        if size is None or size < 0:
            size = sys.maxsize if left is None else left
        elif left is not None and size > left:
            size = left
        parts = []
        while size > 0:
            data = self._take(size)
            if not data:
                break
            parts.append(data)
            size -= len(data)
        return parts[0] if len(parts) == 1 else b''.join(parts)

    def readline(self, size=-1):
        if size is None or size < 0:
            size = sys.maxsize
        if self._left is not None and size > self._left:
            size = self._left
        parts = []
        while size > 0:
            buf, pos = self._buf, self._pos
            if pos >= len(buf):
                if not self._fill():
                    break
                buf, pos = self._buf, 0
            nl = buf.find(b'\n', pos, pos + size)
            stop = nl + 1 if nl >= 0 else min(len(buf), pos + size)
            parts.append(buf[pos:stop])
            self._pos = stop
            size -= stop - pos
            if self._left is not None:
                self._left -= stop - pos
            if nl >= 0:
                break
        return b''.join(parts)

    def readlines(self, hint=-1):
        lines, total = [], 0
        for line in self:
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def readinto(self, b):
        view = memoryview(b).cast('B')
        data = self.read(len(view))
        view[:len(data)] = data
        return len(data)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self):
        pass  # PEP 3333: apps must not close it; the server owns the stream

    def drain(self):
        """Discards the rest of the request stream; False if the slot hit EOF."""
        self._buf, self._pos = b'', 0
        while not self.ended:
            self._next_frame()
        return not self.slot_eof


class ErrorStream:
    """wsgi.errors: a text stream into stderr, which gw logs line by line."""

    __slots__ = ()

    def write(self, s):
        n = sys.stderr.write(s)
        sys.stderr.flush()
        return n

    def writelines(self, lines):
        self.write(''.join(lines))

    def flush(self):
        sys.stderr.flush()

    def close(self):
        pass


class FileWrapper:
    """wsgi.file_wrapper: iterates a file-like object block by block.

    The slot loop recognises its own wrapper and reads it in FILE_BLOCK blocks,
    bounded by the app's Content-Length (PEP 3333, "Optional Platform-Specific
    File Handling")."""

    def __init__(self, filelike, blksize=8192):
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, 'close'):
            self.close = filelike.close

    def __iter__(self):
        read, size = self.filelike.read, self.blksize
        while True:
            data = read(size)
            if not data:
                return
            yield data


def base_environ(slots):
    """The environ entries every request shares; copied once per request."""
    return {
        'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '', 'PATH_INFO': '', 'QUERY_STRING': '',
        'SERVER_NAME': 'localhost', 'SERVER_PORT': '80', 'SERVER_PROTOCOL': 'HTTP/1.1',
        'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http', 'wsgi.errors': ErrorStream(),
        'wsgi.multithread': slots > 1, 'wsgi.multiprocess': True, 'wsgi.run_once': False,
        'wsgi.input_terminated': True, 'wsgi.file_wrapper': FileWrapper,
    }


NO_BODY = InputStream(None, None)  # wsgi.input when REQUEST_END came with the head:
NO_BODY.ended = True               # it holds no state, so requests share it


def decode_head(buf):
    """REQUEST_HEAD payload -> (env, url_scheme, request_id, env_block): the
    gateway's fields, decoded without decode_message's generic loop."""
    env, scheme, rid, block, pos, end = (), '', '', b'', 0, len(buf)
    try:
        while pos < end:
            key, size = buf[pos], buf[pos + 1]
            pos += 2
            if size >= 0x80:  # env_block's length: often two bytes
                size, pos = ((size - 0x80 + (buf[pos] << 7), pos + 1) if buf[pos] < 0x80
                             else _uvarint(buf, pos - 1))
            data = buf[pos:pos + size]
            pos += size
            if key == 0x22:
                block = data
            elif key == 0x12:
                scheme = data.decode('utf-8', 'replace')
            elif key == 0x1a:
                rid = data.decode('utf-8', 'replace')
            elif key == 0x0a:
                env += (data,)
            else:
                break
        else:
            if pos == end:
                return env, scheme, rid, block
    except IndexError:
        pass
    head = decode_message(REQUEST_HEAD, buf)  # unknown fields, truncation: it decides
    return head['env'], head['url_scheme'], head['request_id'], head['env_block']


def build_environ(base, payload, reader):
    """environ and wsgi.input for one REQUEST_HEAD payload (values: latin-1 str)."""
    env, scheme, rid, block = decode_head(payload)
    pairs = block.decode('latin-1').split('\0') if block else []
    if env:
        pairs += [b.decode('latin-1') for b in env]
    if len(pairs) & 1 or len(env) & 1:
        raise ProtocolError('odd count of env items')
    environ, pairs = base.copy(), iter(pairs)
    environ.update(zip(pairs, pairs))
    if environ.get('CONTENT_TYPE') == '':
        del environ['CONTENT_TYPE']
    length = environ.get('CONTENT_LENGTH')
    if length is not None:
        if length.isascii() and length.isdigit():
            length = int(length)
        else:  # empty or garbage: the body runs to REQUEST_END
            del environ['CONTENT_LENGTH']
            length = None
    if scheme:
        environ['wsgi.url_scheme'] = scheme
    if rid:
        environ['gw.request_id'] = rid
    if reader.buf.startswith(REQUEST_END_EMPTY, reader.pos):  # no body, and its end is here
        reader.pos += 8
        stream = NO_BODY
    else:
        stream = InputStream(reader, length)
    environ['wsgi.input'] = stream
    return environ, stream


STATUS_FIELDS = {}  # status line -> its encoded ResponseHead.status; apps use a few


def parse_status(status):
    """'200 OK' -> the encoded status field of ResponseHead."""
    if type(status) is not str:
        raise TypeError('status must be a str like "200 OK", not %s' % type(status).__name__)
    field = STATUS_FIELDS.get(status)
    if field is None:
        code = status[:3]
        if not (code.isascii() and code.isdigit() and code[0] != '0'
                and (len(status) == 3 or status[3] == ' ')
                and not status.encode('latin-1', 'replace').translate(None, VALUE_BYTES)):
            raise ValueError('invalid status %r: want "NNN Reason"' % status)
        field = b'\x08' + _varint_bytes(int(code))
        if len(STATUS_FIELDS) < 1000:
            STATUS_FIELDS[status] = field
    return field


def encode_headers(headers):
    """[(name, value), ...] of str -> ([name, value, ...], header_block bytes)."""
    if not isinstance(headers, list):
        raise TypeError('response headers must be a list, not %s' % type(headers).__name__)
    flat = []
    for item in headers:  # fast path: the checks in a few C calls, not per header
        if (type(item) is not tuple or len(item) != 2 or type(item[0]) is not str
                or type(item[1]) is not str):
            break
        flat += item
    else:  # stricter than the loop below, which decides on HTAB, C1, "_" in names
        names = ''.join(flat[::2])
        if ''.join(flat).isprintable() and names.isascii() and names.replace('-', '').isalnum() \
                and all(flat[::2]):
            try:
                return flat, '\0'.join(flat).encode('latin-1')
            except UnicodeEncodeError:
                pass
    flat = []
    for item in headers:
        if type(item) is not tuple or len(item) != 2:
            raise TypeError('response header %r is not a (name, value) tuple' % (item,))
        name, value = item
        if type(name) is not str or type(value) is not str:
            raise TypeError('response header %r: name and value must be str' % (item,))
        try:
            n, v = name.encode('latin-1'), value.encode('latin-1')
        except UnicodeEncodeError:
            raise ValueError('response header %r is not latin-1' % (item,)) from None
        if not n or n.translate(None, TOKEN_BYTES) or v.translate(None, VALUE_BYTES):
            raise ValueError('invalid response header %r' % (item,))
        flat += item
    return flat, '\0'.join(flat).encode('latin-1')


def response_head(status, block):
    """The RESPONSE_HEAD frame encode_message would make of status and header_block."""
    if block:
        status = b''.join((status, b'\x1a', _varint_bytes(len(block)), block))
    return HEADER.pack(RESPONSE_HEAD, 0, 0, len(status)) + status


class Response:
    """start_response, write() and the response frames of one request."""

    __slots__ = ('sock', 'called', 'head', 'headers', 'head_queued', 'on_wire',
                 'broken', 'done', 'pending', 'head_only')

    def __init__(self, sock, head_only=False):
        self.sock = sock
        self.head_only = head_only  # HEAD: the body is never sent
        self.called = False       # start_response ran (even if it raised)
        self.head = None          # the RESPONSE_HEAD frame start_response made
        self.headers = None       # [name, value, ...] (str)
        self.head_queued = False  # RESPONSE_HEAD is in pending or on the wire
        self.on_wire = False      # some frame was sent
        self.broken = False       # the slot socket failed
        self.done = False         # RESPONSE_END went out: the slot is the next request's
        self.pending = []

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.head_queued:  # PEP 3333: too late to change; re-raise
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.called:
            raise AssertionError('start_response() called twice without exc_info')
        self.called = True
        field, (self.headers, block) = parse_status(status), encode_headers(headers)
        self.head = response_head(field, block)
        return self.write

    def write(self, data):
        """PEP 3333 write(): sends the head (if needed) and data before returning."""
        if self.head is None or self.done:
            raise AssertionError('write() called %s the response'
                                 % ('after' if self.done else 'before starting'))
        self.queue(data, True)
        self.flush()

    def queue(self, data, force_head=False):
        """Adds the frames for one body chunk (head first if not sent) to pending."""
        if type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise TypeError('response body chunks must be bytes, not %s'
                                % type(data).__name__)
            data = bytes(data)
        if not data and not force_head:
            return
        if not self.head_queued:
            if self.head is None:
                raise AssertionError('start_response() must be called before the body')
            self.pending.append(self.head)
            self.head_queued = True
        if self.head_only:  # write() in answer to HEAD
            return
        size = len(data)
        if size <= MAX_BODY_FRAME:
            if size:
                self.pending += (HEADER.pack(RESPONSE_BODY, 0, 0, size), data)
            return
        view = memoryview(data)
        for off in range(0, size, MAX_BODY_FRAME):
            part = view[off:off + MAX_BODY_FRAME]
            self.pending += (HEADER.pack(RESPONSE_BODY, 0, 0, len(part)), part)

    def flush(self):
        if self.broken:
            raise GatewayGone('slot socket is broken')
        if not self.pending:
            return
        bufs, self.pending = self.pending, []
        size = sum(map(len, bufs))
        try:  # small: one join and send() beat sendmsg(); big: not copied
            sent = self.sock.sendmsg(bufs) if size > SMALL_SEND else 0
            if sent < size:  # small, or sendmsg() stopped short at a signal
                self.sock.sendall(b''.join(bufs)[sent:])
        except OSError as e:
            self.broken = True
            raise GatewayGone('slot socket: %s' % e) from None
        self.on_wire = True

    def send_body(self, result):
        """Streams the app's iterable. A list or tuple goes out with RESPONSE_END
        in one write; other iterables are sent chunk by chunk, without delay."""
        if isinstance(result, (str, bytes)):
            raise TypeError('the application returned %s; it must return an iterable'
                            ' of bytes, such as [body]' % type(result).__name__)
        if self.head_only:
            # HEAD: no body goes out, so none is produced (a file is not
            # read); the caller still closes the iterable. Only a lazy app
            # that calls start_response while iterated (PEP 3333 allows it
            # up to the first non-empty chunk) is iterated, that far.
            if self.head is None:
                for _ in result:
                    if self.head is not None:
                        break
            return
        if type(result) in (list, tuple):
            for chunk in result:
                self.queue(chunk)
                if len(self.pending) >= MAX_PENDING:
                    self.flush()
            return
        if isinstance(result, FileWrapper):
            result = self._file_blocks(result)
        for chunk in result:
            self.queue(chunk)
            if self.pending:
                self.flush()

    def _file_blocks(self, wrapper):
        left = None
        headers = self.headers or ()
        for i in range(0, len(headers), 2):
            value = headers[i + 1]
            if headers[i].lower() == 'content-length' and value.isascii() and value.isdigit():
                left = int(value)
        read = wrapper.filelike.read
        while left is None or left > 0:
            data = read(FILE_BLOCK if left is None else min(FILE_BLOCK, left))
            if not data:
                return
            if left is not None:
                left -= len(data)
            yield data

    def end(self, error):
        """Sends RESPONSE_END (with the head if still unsent, unless failing),
        carrying the request's uwsgi.set_logvar() fields (section 11)."""
        logvars = LOCAL.__dict__.pop('logvars', None)
        if error:
            if not self.on_wire:  # nothing sent yet: the gateway answers 500
                self.pending, self.head_queued = [], False
            self.pending.append(message_frame(RESPONSE_END, {'error': error, 'logvars': flat_logvars(logvars)}))
        else:
            if self.head is None:
                raise AssertionError('the application returned without calling start_response()')
            if not self.head_queued:
                self.queue(b'', True)
            self.pending.append(message_frame(RESPONSE_END, {'logvars': flat_logvars(logvars)})
                                if logvars else RESPONSE_END_OK)
        self.done = True
        self.flush()


def log_app_error(exc, environ):
    import traceback  # here, not at the top: it costs every runner ~0.5 MiB
    text = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    sys.stderr.write('gw_wsgi: request %s %s%s%s failed:\n%s' % (
        environ.get('REQUEST_METHOD'), environ.get('SCRIPT_NAME', ''),
        environ.get('PATH_INFO', ''),
        ' (id %s)' % environ['gw.request_id'] if 'gw.request_id' in environ else '', text))
    sys.stderr.flush()


def handle_request(app, sock, reader, base, payload):
    """Serves one request whose REQUEST_HEAD payload was read; returns False
    when the slot is unusable afterwards (EOF or a broken socket)."""
    try:
        environ, stream = build_environ(base, payload, reader)
    except ProtocolError as e:
        fatal(EXIT_PROTOCOL, 'slot: REQUEST_HEAD: %s' % e)
    resp = Response(sock, environ.get('REQUEST_METHOD') == 'HEAD')
    result = None
    try:
        try:
            result = app(environ, resp.start_response)
            resp.send_body(result)
            resp.end('')
        except BaseException as e:
            if resp.broken:
                return False
            log_app_error(e, environ)
            resp.end(_exc_line(e))
            exit_if_out_of_memory(e)
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except BaseException as e:
                    log_app_error(e, environ)
    except GatewayGone:
        return False
    return stream.drain()


# ---------------------------------------------------------------------------
# (6) Slot loop: one thread per slot socket, one request at a time
# ---------------------------------------------------------------------------

class Stats:
    """PONG's counters, one per slot, written by that slot's thread only: no lock."""

    def __init__(self, slots):
        self.busy, self.requests = [0] * slots, [0] * slots


def serve_slot(sock, app, base, stats, i, name, reader=None):
    """Serves requests on slot i until the gateway closes it (then returns),
    or until a WebSocket session takes this thread (section 10): then a new
    thread goes on serving the slot, with this reader."""
    if reader is None:
        reader = SlotReader(sock)
    frame, busy, requests = reader.frame, stats.busy, stats.requests
    try:
        while True:
            try:
                ftype, payload = frame()
            except EOFError:
                return
            except ProtocolError as e:
                fatal(EXIT_PROTOCOL, 'slot: %s' % e)
            if ftype == REQUEST_HEAD:
                busy[i] = 1
                try:
                    more = handle_request(app, sock, reader, base, payload)
                finally:
                    busy[i] = 0
                    requests[i] += 1
            elif ftype == WS_CONNECT and SESSIONS is not None:
                busy[i] = 1
                more = handle_connect(app, (sock, app, base, stats, i, name, reader), payload)
                if more is HANDED:  # the slot is another thread's now
                    sock = None
                    return
                busy[i] = 0
                requests[i] += 1
            elif ftype == CLIENT_GONE:  # for ASGI runners only; never corrupts the next request
                continue
            else:
                fatal(EXIT_PROTOCOL, 'slot: expected REQUEST_HEAD, got frame type %d' % ftype)
            if not more:
                return
    except BaseException:  # a shim bug: log it and close the slot, never hang it
        import traceback
        traceback.print_exc()
    finally:
        if sock is not None:
            sock.close()


def start_slots(socks, app, stats, name):
    base = base_environ(len(socks))
    for i, sock in enumerate(socks):
        start_slot_thread(sock, app, base, stats, i, name)


def start_slot_thread(sock, app, base, stats, i, name, reader=None):
    # Daemon: the process ends when the owner watcher calls exit_now().
    threading.Thread(target=serve_slot, args=(sock, app, base, stats, i, name, reader),
                     name='%s-slot-%d' % (name, i), daemon=True).start()


# ---------------------------------------------------------------------------
# (7) Control: PING -> PONG
# ---------------------------------------------------------------------------

def answer_control(control, ftype, payload, stats):
    """Handles one control frame; frame types this shim does not know are ignored."""
    if ftype != PING:
        return
    seq = decode_message(PING, payload)['seq']
    with CONTROL_LOCK:  # uwsgi.reload() writes here too (section 11)
        control.sendall(message_frame(PONG, {'seq': seq, 'requests': sum(stats.requests),
                                             'busy': sum(stats.busy)}))


# ---------------------------------------------------------------------------
# (8) Owner watcher: EOF on the control socket (or SIGTERM) ends the process
# ---------------------------------------------------------------------------

def runtime_name():
    """"CPython 3.11.2", as platform would say without importing it."""
    name = sys.implementation.name
    return '%s %d.%d.%d' % ({'cpython': 'CPython', 'pypy': 'PyPy'}.get(name, name), *sys.version_info[:3])


def exit_now(status):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)


def finish():
    """Exits 0, once open WebSocket sessions had a moment to hear their end
    (gw closed them before it stops this runner: the app's recv raises)."""
    if SESSIONS is not None:
        SESSIONS.wait_ended(WS_EXIT_GRACE)
    exit_now(0)


def watch_owner(control, stats):
    """Runs the control loop until the gateway goes away; never returns."""
    rfile = control.makefile('rb', buffering=READ_BUFFER)
    try:
        while True:
            ftype, payload = read_frame(rfile)
            answer_control(control, ftype, payload, stats)
    except ProtocolError as e:
        fatal(EXIT_PROTOCOL, 'control: %s' % e)
    except BaseException:  # EOF, a broken socket, SIGINT: the owner is gone
        pass
    finish()


def install_signal_handlers():
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, frame: finish())
    # The gateway's slowlog: every thread's stack to stderr (its log). C-level,
    # so it works even while a thread holds the GIL in a long C call.
    faulthandler.register(signal.SIGUSR1, file=sys.stderr, all_threads=True, chain=False)


# ---------------------------------------------------------------------------
# (9) main
# ---------------------------------------------------------------------------

def fail_load(control, argv, stage):
    """Reports the exception being handled as LOAD_ERROR, then exits 4."""
    exc = sys.exc_info()[1]
    # The app's frames only: the shims', importlib's and asyncio's are noise here.
    stdlib = os.path.dirname(os.__file__)
    noise = (os.path.dirname(importlib.__file__) + os.sep, '<frozen importlib',
             os.path.join(stdlib, 'asyncio') + os.sep)
    shims = (__file__, os.path.join(os.path.dirname(__file__), 'gw_asgi.py'))
    message = getattr(exc, 'load_message', None)  # gw_asgi: lifespan.startup.failed
    if message is not None:
        detail = message + '\n'
    else:
        import traceback
        report = traceback.TracebackException.from_exception(exc)
        report.stack = traceback.StackSummary.from_list(
            [f for f in report.stack if f.filename not in shims and not f.filename.startswith(noise)])
        detail = ''.join(report.format())
        message = _exc_line(exc)
    sys.stderr.write(detail)
    if control is None:
        fd = control_fd_hint(argv)
        try:
            control = socket.socket(fileno=fd) if fd is not None else None
        except OSError:
            control = None
    if control is not None:
        try:
            control.setblocking(True)
            control.sendall(message_frame(LOAD_ERROR, {
                'stage': stage, 'message': message, 'detail': detail}))
        except OSError:
            pass
    exit_now(EXIT_LOAD)


def load_asgi():
    """gw_asgi.py, from beside this file (never from the app's sys.path),
    importing this running module as gw_wsgi."""
    mod = sys.modules.get('gw_asgi')
    if mod is None:
        sys.modules.setdefault('gw_wsgi', sys.modules[__name__])
        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'gw_asgi.py')
        spec = importlib.util.spec_from_file_location('gw_asgi', path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules['gw_asgi'] = mod
        spec.loader.exec_module(mod)
    return mod


def main(argv):
    control = None
    stage = 'args'
    try:
        opts = parse_args(argv)
    except UsageError:
        fail_load(control, argv, stage)
    if opts['selftest'] is not None:
        return selftest(opts['selftest'])
    try:
        control = socket.socket(fileno=opts['control_fd'])
        control.setblocking(True)  # an inherited fd may still be O_NONBLOCK
        slots = [open_slot(spec) for spec in opts['slot_fds']]
        if opts['dir']:
            os.chdir(opts['dir'])
        if opts['callable'] and ':' in opts['app']:
            raise UsageError('give the callable either in APP "module:name" or as --callable')
        sys.argv = [opts['app']]
        install_uwsgi_module(opts, control, len(slots))
        stage = 'import'
        module, name = import_app(opts['app'])
        stage = 'callable'
        name = name or opts['callable']
        app = find_callable(module, [name] if name else DEFAULT_CALLABLES)
        interface = opts['interface'] or 'auto'
        asgi = interface == 'asgi' or (interface == 'auto' and load_asgi().is_asgi(app))
        stage = 'postfork'
        uwsgi_started()  # postfork hooks, timers (section 11)
    except BaseException:  # SystemExit and KeyboardInterrupt from the app too
        fail_load(control, argv, stage)
    if asgi:
        load_asgi().serve(app, control, slots, Stats(len(slots)),
                          lambda stage: fail_load(control, argv, stage), sessions=opts['session_fd'])
    if opts['session_fd'] is not None:
        open_sessions(opts['session_fd'])  # uWSGI's websocket_* calls (section 10)
    if opts['wsgi_threads'] and opts['wsgi_threads'] < len(slots):
        # gw offered more slots than a WSGI app gets threads (auto
        # detection with threads unset): READY says how many are served.
        for sock in slots[opts['wsgi_threads']:]:
            sock.close()
        del slots[opts['wsgi_threads']:]
    stats = Stats(len(slots))
    install_signal_handlers()
    start_slots(slots, app, stats, opts['name'] or 'gw')
    try:
        control.sendall(message_frame(READY, {
            'protocol': PROTOCOL_VERSION, 'pid': os.getpid(),
            'runtime': runtime_name(),
            'slots': len(slots), 'websocket': SESSIONS is not None}))
    except OSError:
        exit_now(0)  # the gateway is already gone
    UWSGI['ready'] = True  # uwsgi.reload() may speak on control now
    watch_owner(control, stats)


# ---------------------------------------------------------------------------
# (10) WebSockets for WSGI apps, through uWSGI's API (section 11). gw
# terminates the protocol and hands over whole messages (docs/design/
# websocket.md). A handshake comes on a slot as WS_CONNECT and reaches the
# app as an ordinary request; the app that calls uwsgi.websocket_handshake()
# accepts it (WS_ACCEPT), and from then on its thread IS the session: a new
# thread takes over the slot, so the slot is free at once (as for ASGI) and
# the request timeout never sees the session. Returning from the WSGI
# callable ends the session (1000; 1011 when it raised). An app that does
# not call the handshake answers on the slot as usual: a refusal.
#
# The session channel (one per runner) is read by one thread, which routes
# each message to its session's queue; sessions write to it under a lock.
# Every session is a thread, so a runner holds at most GW_WSGI_MAX_SESSIONS
# (default 4096) of them; the handshake beyond that raises IOError, and an
# app that lets it propagate answers 503.
# ---------------------------------------------------------------------------

SESSIONS = None   # the SessionChannel when gw gave one (--session-fd)
HANDED = object()  # handle_connect: the app's thread kept the session
WS_ID = struct.Struct('<I')
WS_CONNECTING, WS_OPEN, WS_CLOSED = range(3)
WS_MAX_SESSIONS = 4096
WS_EXIT_GRACE = 2.0  # seconds sessions get to end when the runner stops
LOCAL = threading.local()  # .ws: the WebSocket handshake this thread serves


class WebSocketGone(OSError):
    """The session is over (uWSGI raises IOError, an alias of OSError)."""


class TooManySessions(WebSocketGone):
    """The runner holds GW_WSGI_MAX_SESSIONS sessions already."""


class SessionChannel:
    """gw's WebSocket frames for this runner: a reader thread routes them to
    their sessions; sessions write theirs under a lock."""

    def __init__(self, fd, limit):
        self.sock = socket.socket(fileno=fd)
        self.sock.setblocking(True)
        self.sessions = {}  # id -> WebSocket; changed under lock
        self.lock = threading.Lock()
        self.wlock = threading.Lock()
        self.limit = limit
        self.lost = False
        self.live = 0  # accepted sessions whose thread has not returned
        self.ended = threading.Condition(self.lock)

    def start(self):
        threading.Thread(target=self.run, name='gw-sessions', daemon=True).start()

    def run(self):
        frame, sessions = SlotReader(self.sock).frame, self.sessions
        try:
            while True:
                ftype, payload = frame()
                if ftype == WS_TEXT or ftype == WS_BINARY:
                    if len(payload) < 4:
                        fatal(EXIT_PROTOCOL, 'session channel: short message frame')
                    s = sessions.get(WS_ID.unpack_from(payload)[0])
                    if s is not None:  # else it crossed our WS_CLOSE
                        s.inbox.put(payload[4:])  # bytes for text and binary, as uWSGI
                elif ftype == WS_CLOSE:
                    msg = decode_message(WS_CLOSE, payload)
                    with self.lock:
                        s = sessions.pop(msg['session'], None)
                    if s is not None:
                        s.gone(msg['code'] or 1005, msg['reason'])
                else:
                    fatal(EXIT_PROTOCOL, 'session channel: unexpected frame type %d' % ftype)
        except EOFError:
            pass
        except ProtocolError as e:
            fatal(EXIT_PROTOCOL, 'session channel: %s' % e)
        self.lost = True
        with self.lock:
            gone, self.sessions = list(sessions.values()), {}
        for s in gone:
            s.gone(1006, 'gw closed the session channel')

    def add(self, s):
        with self.lock:
            if self.lost or self.live >= self.limit:
                return False
            self.sessions[s.sid] = s
            self.live += 1
            return True

    def done(self):
        """A session's thread returned."""
        with self.lock:
            self.live -= 1
            if not self.live:
                self.ended.notify_all()

    def wait_ended(self, timeout):
        with self.lock:
            self.ended.wait_for(lambda: not self.live, timeout)

    def send(self, ftype, sid, data):
        hdr = HEADER.pack(ftype, 0, 0, 4 + len(data)) + WS_ID.pack(sid)
        with self.wlock:
            if len(data) < SMALL_SEND:
                self.sock.sendall(hdr + data)
            else:
                self.sock.sendall(hdr)
                self.sock.sendall(data)

    def close(self, sid, code, reason=''):
        """Ends session sid from the app's side, unless gw ended it first."""
        with self.lock:
            if self.sessions.pop(sid, None) is None:
                return
        try:
            with self.wlock:
                self.sock.sendall(message_frame(WS_CLOSE, {'session': sid, 'code': code, 'reason': reason}))
        except OSError:
            pass  # gw is gone: so is the session


class _TakenSlot:
    """What a Response writes to once its slot went to another thread."""

    def sendall(self, data):
        raise BrokenPipeError('the WebSocket handshake took this response over')

    sendmsg = sendall


class WebSocket:
    """One session: the thread that accepted it, its inbox, its state."""

    __slots__ = ('ch', 'sid', 'slot', 'environ', 'resp', 'state', 'inbox',
                 'code', 'read_closed', 'handed', 'slot_broken', 'over_cap')

    def __init__(self, ch, sid, slot, environ, resp):
        import queue
        self.ch, self.sid, self.slot, self.environ, self.resp = ch, sid, slot, environ, resp
        self.state = WS_CONNECTING
        self.inbox = queue.SimpleQueue()  # message bytes; None: gw ended the session
        self.code = None                  # gw's close code, once it ended the session
        self.read_closed = False          # recv saw the end
        self.handed = self.slot_broken = self.over_cap = False

    def gone(self, code, reason):
        self.code = code
        self.inbox.put(None)

    def handshake(self, origin, proto):
        if self.state != WS_CONNECTING:
            raise WebSocketGone('unable to complete websocket handshake')
        env = self.environ
        if not proto:
            offered = env.get('HTTP_SEC_WEBSOCKET_PROTOCOL', '')
            proto = offered.split(',')[0].strip()  # uWSGI echoes the header; one is valid
        origin = origin or env.get('HTTP_ORIGIN') or '*'
        if not self.ch.add(self):
            self.over_cap = True
            raise TooManySessions('unable to complete websocket handshake: this runner has %d '
                                  'sessions open (GW_WSGI_MAX_SESSIONS)' % self.ch.limit)
        self.state = WS_OPEN
        sock, app, base, stats, i, name, reader = self.slot
        try:
            sock.sendall(message_frame(WS_ACCEPT, {
                'subprotocol': proto, 'headers': [b'Sec-WebSocket-Origin', origin.encode('latin-1')]}))
        except OSError:
            self.slot_broken = True
            self.ch.close(self.sid, 1011)
            self.ch.done()
            self.state = WS_CLOSED
            raise WebSocketGone('unable to complete websocket handshake') from None
        # The slot is free: another thread serves it; this one keeps the session.
        self.resp.sock = _TakenSlot()
        stats.busy[i] = 0
        stats.requests[i] += 1
        self.handed = True
        start_slot_thread(sock, app, base, stats, i, name, reader)

    def recv(self, block=True):
        if self.state != WS_OPEN or self.read_closed:
            raise WebSocketGone('unable to receive websocket message')
        if block:
            m = self.inbox.get()
        else:
            try:
                m = self.inbox.get_nowait()
            except Exception:  # queue.Empty
                return b''
        if m is None:
            self.read_closed = True
            raise WebSocketGone('unable to receive websocket message')
        return m

    def send(self, ftype, msg):
        if self.state != WS_OPEN or self.code is not None or self.ch.lost:
            raise WebSocketGone('unable to send websocket message')
        data = msg.encode('utf-8') if isinstance(msg, str) else bytes(msg)
        if len(data) > MAX_PAYLOAD - 4:
            raise ValueError('WebSocket message of %d bytes: gw carries up to 16 MiB' % len(data))
        try:
            self.ch.send(ftype, self.sid, data)
        except OSError:
            raise WebSocketGone('unable to send websocket message') from None

    def end(self, code):
        if self.state == WS_OPEN:
            self.ch.close(self.sid, code)
            self.ch.done()
        self.state = WS_CLOSED


def deny_session(sock, ws):
    deny = Response(sock)
    deny.start_response('503 Service Unavailable', [('Content-Type', 'text/plain')])
    deny.send_body([b'this runner has %d WebSocket sessions open (GW_WSGI_MAX_SESSIONS)\n' % ws.ch.limit])
    deny.end('')


def handle_connect(app, slot, payload):
    """WS_CONNECT on a slot: runs the app on it as a request. Returns HANDED
    when the app accepted (this thread kept the session to its end, another
    took the slot); else True/False as handle_request (the slot is usable)."""
    sock, _app, base, _stats, _i, _name, reader = slot
    try:
        environ, _stream = build_environ(base, payload, reader)
        sid = decode_message(WS_CONNECT, payload)['websocket_session']
    except ProtocolError as e:
        fatal(EXIT_PROTOCOL, 'slot: WS_CONNECT: %s' % e)
    # No body follows WS_CONNECT. Upgrade and Connection are hop-by-hop in
    # gw's head; uWSGI apps may look at them.
    environ['wsgi.input'] = NO_BODY
    environ['HTTP_UPGRADE'] = 'websocket'
    environ['HTTP_CONNECTION'] = 'Upgrade'
    resp = Response(sock)
    ws = LOCAL.ws = WebSocket(SESSIONS, sid, slot, environ, resp)
    result = failed = None
    try:
        try:
            result = app(environ, resp.start_response)
            if ws.over_cap and not resp.on_wire:
                # The app's answer to the IOError (a framework's 500 page)
                # hides the reason: this runner is full.
                deny_session(sock, ws)
            elif ws.state == WS_CONNECTING:  # no handshake: the app's answer refuses it
                resp.send_body(result)
                resp.end('')
        except BaseException as e:
            if ws.state == WS_CONNECTING and not ws.slot_broken:
                if resp.broken:
                    return False
                if ws.over_cap and not resp.on_wire:
                    deny_session(sock, ws)
                else:
                    log_app_error(e, environ)
                    resp.end(_exc_line(e))
            elif not isinstance(e, WebSocketGone):  # recv/send's end is a normal one
                log_app_error(e, environ)
                failed = e
        finally:
            close = getattr(result, 'close', None)
            if close is not None:
                try:
                    close()
                except BaseException as e:
                    log_app_error(e, environ)
    except GatewayGone:
        if not ws.handed:
            return False
    finally:
        LOCAL.ws = None
        ws.end(1011 if failed is not None else 1000)
    if ws.handed:
        return HANDED
    return not (ws.slot_broken or resp.broken)


# ---------------------------------------------------------------------------
# (11) The uwsgi module and uwsgidecorators: uWSGI's Python API, so apps
# written for uWSGI import them unchanged. Installed as sys.modules['uwsgi']
# and ['uwsgidecorators'] before the app is imported, for WSGI and ASGI apps
# (unless the environment has real ones). What each call does under gw:
#   opt            the options as uWSGI would show them: enable-threads,
#                  lazy-apps (each runner imports the app), threads, processes
#   worker_id()    the runner's number, 1..numproc: a replacement (recycle,
#                  restart, crash) inherits its predecessor's (runners/pool/
#                  number.go); numproc is the app's workers (the ceiling)
#   mule_id()      0: gw has no mules
#   lock/unlock(n) one lock per n shared by the app's runners: a thread lock,
#                  then an fcntl record lock on byte n of a memfd gw hands
#                  every runner of the app (--lock-fd)
#   set_logvar/get_logvar  per-request fields, sent in RESPONSE_END; gw's
#                  access log prints them as vars.NAME=VALUE (ASGI: per
#                  slot task, gw_asgi.LOGVARS, until the last body part)
#   cache_get/set/update/del/exists/clear  gw's cache of the app, shared by
#                  its runners and kept across reloads (runners/uwsgicache.go):
#                  CACHE_REQUEST/CACHE_ANSWER on the cache channel (--cache-fd)
#   reload()       RELOAD_APP on the control socket: gw reloads this app
#                  gracefully, as `gw ctl reload APP` with its current config;
#                  True once asked (False while the app is still loading)
#   @postfork      run in each runner once the app is imported, before READY
#   @timer/@cron   (and @rbtimer) run in one runner of the app: the one that
#                  holds the timer token (below, at run_timers), runner 1
#                  as a rule; a replacement or a new generation's runner
#                  takes over only once the old holder is gone, where it
#                  left off
#   @thread, @lock the function runs in a new daemon thread / under lock()
#   spool(), @spool the app's spooler directory (--spooler, the app's
#                  `spooler:`): a job is a file there, written whole (a temp
#                  name, fsync, rename); the token's holder runs the jobs, retries
#                  those that raise or return SPOOL_RETRY, and a job left by
#                  a killed gw or runner runs when runner 1 is back
# Any other name raises NotImplementedError naming the call (also an
# AttributeError, so hasattr() and getattr(uwsgi, name, default) see it
# missing); so do the decorators gw lacks (@mulefunc, @signal, ...), and
# the cache calls of a runner gw gave no cache channel.
# ---------------------------------------------------------------------------

class UwsgiNotImplemented(NotImplementedError, AttributeError):
    """A uwsgi API call gw does not provide."""


UWSGI = {'worker_id': 1, 'numproc': 1, 'control': None, 'lock_fd': None,
         'postfork': [], 'timers': [], 'ready': False, 'cache': None,
         'spooler': None, 'spool_functions': {}, 'logvars': None}
SPOOL_OK, SPOOL_RETRY, SPOOL_IGNORE = -2, -1, 0  # uWSGI's values
SPOOL_PREFIX = 'uwsgi_spoolfile_on_'  # uWSGI's job file names; temp files start with '.'
SPOOL_POLL = 0.5        # seconds between scans of the spooler directory
SPOOL_RETRY_MAX = 30.0  # the longest wait before a failed job runs again
SPOOL_SEQ = [0]
CACHE_OPS = {'get': 1, 'set': 2, 'update': 3, 'del': 4, 'exists': 5, 'clear': 6}
CACHE_LOCK = threading.Lock()  # one request on the cache channel at a time
CONTROL_LOCK = threading.Lock()  # the control socket is written by several threads
UWSGI_LOCKS = {}                 # n -> threading.Lock, the in-process half of lock(n)
UWSGI_LOCKS_GUARD = threading.Lock()


def flat_logvars(logvars):
    """{name: value} -> [name, value, ...] as bytes, for RESPONSE_END."""
    out = []
    for k, v in (logvars or {}).items():
        out += (k if type(k) is bytes else str(k).encode('utf-8', 'replace'),
                v if type(v) is bytes else str(v).encode('utf-8', 'replace'))
    return out


def send_control(frame):
    control = UWSGI['control']
    if control is None:
        return False
    with CONTROL_LOCK:
        try:
            control.sendall(frame)
        except OSError:
            return False
    return True


def uwsgi_opt(opts, slots):
    """uwsgi.opt: keys str, values bytes or True, as uWSGI has them (a flag
    is True, a value bytes). sentry-sdk, ddtrace and LaunchDarkly read
    'enable-threads', 'threads' and 'lazy-apps' here."""
    opt = {'enable-threads': True, 'lazy-apps': True, 'master': True,
           'py-call-uwsgi-fork-hooks': True,
           'threads': str(opts.get('wsgi_threads') or slots).encode(),
           'processes': str(UWSGI['numproc']).encode()}
    app = (opts.get('app') or '').encode('utf-8', 'surrogateescape')
    opt['wsgi-file' if app.endswith((b'.py', b'.wsgi')) else 'module'] = app
    if opts.get('dir'):
        opt['chdir'] = opts['dir'].encode('utf-8', 'surrogateescape')
    return opt


def _cache_bytes(v, what):
    if type(v) is bytes:
        return v
    if isinstance(v, str):
        return v.encode('utf-8')
    if isinstance(v, (bytearray, memoryview)):
        return bytes(v)
    raise TypeError('uwsgi cache %s must be bytes or str, not %s' % (what, type(v).__name__))


def cache_call(op, key=b'', value=b'', expires=0, cache=None):
    """One request on the cache channel; returns (ok, value)."""
    ch = UWSGI['cache']
    if ch is None:
        raise UwsgiNotImplemented('uwsgi.cache_%s: gw gave this runner no cache channel' % op)
    name = _cache_bytes(cache or b'', 'name')
    full = name + b'\0' + (_cache_bytes(key, 'key') if op != 'clear' else b'')
    frame = message_frame(CACHE_REQUEST, {'op': CACHE_OPS[op], 'key': full,
                                          'value': _cache_bytes(value, 'value'),
                                          'expires': int(expires or 0)})
    with CACHE_LOCK:
        sock, rfile = ch
        try:
            sock.sendall(frame)
            ftype, payload = read_frame(rfile)
        except (OSError, EOFError) as e:
            raise IOError('uwsgi.cache_%s: the cache channel is gone (%s)' % (op, e)) from None
    if ftype != CACHE_ANSWER:
        fatal(EXIT_PROTOCOL, 'cache channel: expected CACHE_ANSWER, got frame type %d' % ftype)
    ans = decode_message(CACHE_ANSWER, payload)
    return ans['ok'], ans['value']


def spool_job(args=None, **kwargs):
    """uwsgi.spool: writes a job file; returns its name (bytes), as uWSGI.
    The job is a pickled dict (uWSGI takes bytes values; gw any picklable);
    'at' (a unix time) holds it until then."""
    import pickle
    d = UWSGI['spooler']
    if d is None:
        raise UwsgiNotImplemented('uwsgi.spool: the app has no spooler directory (its spooler: in gw.yaml)')
    job = dict(args or {}, **kwargs)
    with UWSGI_LOCKS_GUARD:
        SPOOL_SEQ[0] += 1
        seq = SPOOL_SEQ[0]
    import time
    name = '%s%s_%d_%d_%d_%d' % (SPOOL_PREFIX, socket.gethostname(), os.getpid(), seq,
                                 int(time.time()), time.monotonic_ns() % 1000000)
    tmp = os.path.join(d, '.' + name)
    with open(tmp, 'wb') as f:
        pickle.dump(job, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, os.path.join(d, name))
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)  # the rename survives a crash too
    finally:
        os.close(dfd)
    return os.path.join(d, name).encode()


def run_spooler(d):
    """Runner 1's spooler thread: runs each job file of d, oldest first;
    removes it once done, keeps it for a later try when it raised or said
    SPOOL_RETRY (waits doubling from 1 s to SPOOL_RETRY_MAX)."""
    import pickle
    import time
    import traceback
    later = {}  # name -> (not before, tries)
    while True:
        try:
            names = sorted(n for n in os.listdir(d) if n.startswith(SPOOL_PREFIX))
        except OSError as e:
            sys.stderr.write('gw_wsgi: spooler: %s\n' % e)
            names = []
        for name in names:
            path = os.path.join(d, name)
            now = time.time()
            if later.get(name, (0, 0))[0] > now:
                continue
            try:
                with open(path, 'rb') as f:
                    job = pickle.load(f)
            except FileNotFoundError:
                continue
            except Exception:
                sys.stderr.write('gw_wsgi: spooler: unreadable job %s, removed:\n' % name)
                traceback.print_exc()
                os.unlink(path)
                continue
            if isinstance(job, dict) and float(job.get('at', 0) or 0) > now:
                continue
            fn = getattr(sys.modules.get('uwsgi'), 'spooler', None)
            try:
                if fn is None:
                    raise RuntimeError('no spooler function: set uwsgi.spooler or use @spool')
                result = fn(job)
            except Exception:
                traceback.print_exc()
                result = SPOOL_RETRY
            if result == SPOOL_RETRY:
                tries = later.get(name, (0, 0))[1] + 1
                later[name] = (time.time() + min(2 ** (tries - 1), SPOOL_RETRY_MAX), tries)
                continue
            later.pop(name, None)
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        time.sleep(SPOOL_POLL)


def spool_dispatch(job):
    """uwsgi.spooler as uwsgidecorators sets it: the job names its @spool
    function (ud_spool_func)."""
    name = job.get('ud_spool_func') if isinstance(job, dict) else None
    entry = UWSGI['spool_functions'].get(name)
    if entry is None:
        sys.stderr.write('gw_wsgi: spooler: no @spool function %r; job dropped\n' % (name,))
        return SPOOL_OK
    f, kind, pass_arguments = entry
    if pass_arguments:
        result = f(*job.get('args', ()), **job.get('kwargs', {}))
    else:
        args = {k: v for k, v in job.items() if k not in ('ud_spool_func', 'args', 'kwargs')}
        result = f(args)
    if kind == 'forever':
        return SPOOL_RETRY
    if kind == 'raw':
        return result
    return SPOOL_OK


def uwsgi_lock(n=0):
    with UWSGI_LOCKS_GUARD:
        lk = UWSGI_LOCKS.setdefault(n, threading.Lock())
    lk.acquire()
    if UWSGI['lock_fd'] is not None:
        import fcntl
        try:
            fcntl.lockf(UWSGI['lock_fd'], fcntl.LOCK_EX, 1, n)
        except BaseException:
            lk.release()
            raise


def uwsgi_unlock(n=0):
    lk = UWSGI_LOCKS.get(n)
    if lk is None or not lk.locked():
        raise ValueError('uwsgi.unlock(%d): the lock is not held' % n)
    if UWSGI['lock_fd'] is not None:
        import fcntl
        fcntl.lockf(UWSGI['lock_fd'], fcntl.LOCK_UN, 1, n)
    lk.release()


def make_uwsgi_module(opts=None, slots=1):
    import types
    mod = types.ModuleType('uwsgi', "gw's implementation of uWSGI's Python API (gw_wsgi.py section 11)")
    mod.opt = uwsgi_opt(opts or {}, slots)
    mod.version = b'gw'
    mod.numproc = UWSGI['numproc']
    mod.post_fork_hook = None  # uWSGI's: set by an app, called with the postfork hooks

    def current(what):
        ws = getattr(LOCAL, 'ws', None)
        if ws is None:
            raise WebSocketGone('unable to %s: no WebSocket handshake in this request%s' % (
                what, '' if SESSIONS is not None else ' (gw gave this runner no session channel)'))
        return ws

    def websocket_handshake(key=None, origin=None, proto=None):
        # key: gw answers the client's Sec-WebSocket-Key itself.
        current('complete websocket handshake').handshake(origin, proto)

    def websocket_recv(request_context=None):
        return current('receive websocket message').recv()

    def websocket_recv_nb(request_context=None):
        return current('receive websocket message').recv(block=False)

    def websocket_send(message, request_context=None):
        current('send websocket message').send(WS_TEXT, message)

    def websocket_send_binary(message, request_context=None):
        current('send websocket binary message').send(WS_BINARY, message)

    def worker_id():
        return UWSGI['worker_id']

    def mule_id():
        return 0

    def set_logvar(key, value):
        ctx = UWSGI['logvars']
        if ctx is not None:  # ASGI: the slot's fields (gw_asgi.LOGVARS)
            d = ctx.get(None)
            if d is not None:
                d[key] = value
            return
        d = LOCAL.__dict__.get('logvars')
        if d is None:
            d = LOCAL.logvars = {}
        d[key] = value

    def get_logvar(key):
        ctx = UWSGI['logvars']
        d = (ctx.get(None) if ctx is not None else LOCAL.__dict__.get('logvars')) or {}
        return d.get(key)

    # uWSGI's answers: the value or None; True or None.
    def cache_get(key, cache=None):
        ok, value = cache_call('get', key, cache=cache)
        return value if ok else None

    def cache_set(key, value, expires=0, cache=None):
        return cache_call('set', key, value, expires, cache)[0] or None

    def cache_update(key, value, expires=0, cache=None):
        return cache_call('update', key, value, expires, cache)[0] or None

    def cache_del(key, cache=None):
        return cache_call('del', key, cache=cache)[0] or None

    def cache_exists(key, cache=None):
        return cache_call('exists', key, cache=cache)[0] or None

    def cache_clear(cache=None):
        return cache_call('clear', cache=cache)[0] or None

    def reload():
        # Before READY gw reads the control socket for READY alone: a
        # reload asked while the app loads is refused (False).
        return UWSGI['ready'] and send_control(message_frame(RELOAD_APP, {}))

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)
        raise UwsgiNotImplemented('uwsgi.%s is not provided by gw (its uwsgi module: README, '
                                  '"Moving from uWSGI")' % name)

    for f in (websocket_handshake, websocket_recv, websocket_recv_nb, websocket_send,
              websocket_send_binary, worker_id, mule_id, set_logvar, get_logvar, reload,
              cache_get, cache_set, cache_update, cache_del, cache_exists, cache_clear,
              __getattr__):
        setattr(mod, f.__name__, f)
    mod.lock, mod.unlock = uwsgi_lock, uwsgi_unlock
    mod.spool = mod.send_to_spooler = spool_job
    mod.SPOOL_OK, mod.SPOOL_RETRY, mod.SPOOL_IGNORE = SPOOL_OK, SPOOL_RETRY, SPOOL_IGNORE
    mod.spooler = None  # the app's job function (uWSGI's); @spool sets it
    return mod


def make_uwsgidecorators_module():
    import functools
    import types
    mod = types.ModuleType('uwsgidecorators', "gw's uwsgidecorators (gw_wsgi.py section 11)")

    def postfork(f):
        UWSGI['postfork'].append(f)
        return f

    def thread(f):
        @functools.wraps(f)
        def start(*args, **kwargs):
            t = threading.Thread(target=f, args=args, kwargs=kwargs, daemon=True)
            t.start()
            return t
        return start

    def lock(f):
        @functools.wraps(f)
        def locked(*args, **kwargs):
            uwsgi_lock()
            try:
                return f(*args, **kwargs)
            finally:
                uwsgi_unlock()
        return locked

    class timer:
        """@timer(seconds): f(signum) every seconds, in one runner of the app."""

        def __init__(self, secs, target='', signum=None):
            self.secs, self.signum = float(secs), signum

        def __call__(self, f):
            UWSGI['timers'].append(('timer', self.secs, f, self.signum))
            return f

    class cron:
        """@cron(minute, hour, day, month, weekday): -1 is any, -N every N."""

        def __init__(self, minute, hour, day, month, dayweek, target='', signum=None):
            self.spec, self.signum = (minute, hour, day, month, dayweek), signum

        def __call__(self, f):
            UWSGI['timers'].append(('cron', self.spec, f, self.signum))
            return f

    class _spoolraw:
        kind = 'raw'

        def __init__(self, f, pass_arguments=False):
            self.f, self.pass_arguments = f, pass_arguments
            self.__name__ = getattr(f, '__name__', 'spool')
            UWSGI['spool_functions'][self.__name__] = (f, self.kind, pass_arguments)
            uw = sys.modules.get('uwsgi')
            if uw is not None and getattr(uw, 'spooler', None) is None:
                uw.spooler = spool_dispatch

        def __call__(self, *args, **kwargs):
            if self.pass_arguments:
                job = {'args': args, 'kwargs': kwargs}
            else:
                job = dict(args[0]) if args else {}
                job.update(kwargs)
            job['ud_spool_func'] = self.__name__
            return spool_job(job)

        spool = __call__

    class _spool(_spoolraw):
        kind = 'ok'

    class _spoolforever(_spoolraw):
        kind = 'forever'

    def decorator(cls):
        def make(f=None, pass_arguments=False):
            if f is None:  # @spool(pass_arguments=True)
                return lambda g: cls(g, pass_arguments)
            return cls(f, pass_arguments)
        return make

    def __getattr__(name):
        if name.startswith('__'):
            raise AttributeError(name)
        raise UwsgiNotImplemented('uwsgidecorators.%s is not provided by gw (README, '
                                  '"Moving from uWSGI")' % name)

    for f in (postfork, thread, lock, __getattr__):
        setattr(mod, f.__name__, f)
    mod.timer, mod.cron = timer, cron
    mod.rbtimer = timer  # uWSGI's red-black-tree timer: the same contract
    mod.spool, mod.spoolraw, mod.spoolforever = decorator(_spool), decorator(_spoolraw), decorator(_spoolforever)
    return mod


def cron_due(spec, tm):
    """Whether a uWSGI cron spec (minute, hour, day, month, weekday; -1 any,
    -N every N) matches struct_time tm. uWSGI's weekday: 0 is Sunday."""
    values = (tm.tm_min, tm.tm_hour, tm.tm_mday, tm.tm_mon, (tm.tm_wday + 1) % 7)
    for want, have in zip(spec, values):
        if want == -1 or want is None:
            continue
        if want < -1:
            if have % -want:
                return False
        elif want != have:
            return False
    return True


# The timer token: timers, cron entries and the spooler run in exactly one
# runner of the app, the one holding an fcntl record lock on TOKEN_BYTE of
# the app's lock file (--lock-fd). gw keeps that memfd per app name for
# its whole life, so the runners of two generations (a reload) and a
# replacement starting beside the runner it replaces (a restart, a
# recycle) contend for the same lock: the newcomer waits until the old
# holder exits (the kernel releases the lock even on SIGKILL). Runners
# numbered 1 contend from their start, the others only TOKEN_DEFER after
# theirs: a runner 1 holds it as a rule, but when a scale-down retires
# runner 1 and keeps runner 2, runner 2 goes on firing. The wait polls
# (LOCK_NB): a blocked F_SETLKW would
# enter the kernel's deadlock detection, which sees processes, not threads,
# and could fail an app's uwsgi.lock() call with EDEADLK.
# The holder writes what it fired at the start of the same file (TOKEN_STATE:
# the last cron minute it went through, each timer's last tick on the
# system-wide monotonic clock), so the next holder neither fires a timer
# early nor skips or repeats a cron minute that fell in the handover.
TOKEN_BYTE = 1 << 40    # far above any uwsgi.lock(n)
TOKEN_POLL = 0.5        # seconds between tries for the token
TOKEN_DEFER = 10.0      # seconds a runner not numbered 1 leaves to runner 1
TOKEN_STATE = struct.Struct('<4sqI')  # magic, last cron minute, timer count; then a double per timer
TOKEN_MAGIC = b'gwT1'
CRON_CATCHUP = 1        # a new holder goes at most this many minutes back


def take_token(fd):
    """Blocks until this process holds the timer token (fd: the lock file)."""
    import errno
    import fcntl
    import time
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, TOKEN_BYTE)
            return
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
        time.sleep(TOKEN_POLL)


def token_state(fd, ntimers):
    """(last cron minute or None, [last tick or None per timer]) as the
    previous holder left them."""
    if fd is None:
        return None, [None] * ntimers
    b = os.pread(fd, TOKEN_STATE.size + 8 * ntimers, 0)
    if len(b) < TOKEN_STATE.size or b[:4] != TOKEN_MAGIC:
        return None, [None] * ntimers
    _, minute, n = TOKEN_STATE.unpack_from(b)
    ticks = [None] * ntimers
    if n == ntimers and len(b) == TOKEN_STATE.size + 8 * n:  # the same timers
        ticks = list(struct.unpack_from('<%dd' % n, b, TOKEN_STATE.size))
    return minute, ticks


def save_token_state(fd, minute, ticks):
    if fd is not None:
        os.pwrite(fd, TOKEN_STATE.pack(TOKEN_MAGIC, minute, len(ticks)) +
                  struct.pack('<%dd' % len(ticks), *ticks), 0)


def run_timers(timers, fd=None):
    """The timer thread of the token's holder: fires each timer on its
    period and each cron entry once in a minute that matches, in this one
    thread, from where the previous holder left off."""
    import time
    last_minute, ticks = token_state(fd, len(timers))
    now = time.monotonic()
    ticks = [t if t is not None and t <= now else now for t in ticks]
    due = [ticks[i] + t[1] if t[0] == 'timer' else 0 for i, t in enumerate(timers)]
    minute = int(time.time() // 60)
    if last_minute is None:
        last_minute = minute  # a first start: not in the minute it began
    else:  # the minutes the previous holder left, at most CRON_CATCHUP back
        last_minute = max(last_minute, minute - CRON_CATCHUP - 1)
    while True:
        now = time.monotonic()
        wall = time.time()
        minute = int(wall // 60)
        # Usually none or one minute; each entry fires once per pass.
        pending = range(last_minute + 1, minute + 1)
        fire = []
        for i, (kind, arg, f, signum) in enumerate(timers):
            if kind == 'timer':
                if now < due[i]:
                    continue
                due[i] = max(due[i] + arg, now)  # no burst after a stall
                ticks[i] = now
            elif not any(cron_due(arg, time.localtime(m * 60)) for m in pending):
                continue
            fire.append((f, signum if signum is not None else i))
        last_minute = max(last_minute, minute)
        # Saved before the calls: a holder killed mid-call is not followed
        # by a second call of the same tick.
        save_token_state(fd, last_minute, ticks)
        for f, arg in fire:
            try:
                f(arg)
            except BaseException:
                import traceback
                traceback.print_exc()
        waits = [d - now for d, t in zip(due, timers) if t[0] == 'timer']
        if any(t[0] == 'cron' for t in timers):
            waits.append(60 - wall % 60 + 0.01)  # wake in the next minute
        time.sleep(max(min(waits), 0.01))


def run_token_holder():
    """Takes the timer token, then runs timers and the spooler."""
    fd = UWSGI['lock_fd']
    if fd is not None:
        if UWSGI['worker_id'] != 1:
            import time
            time.sleep(TOKEN_DEFER)
        take_token(fd)
    if UWSGI['timers']:
        threading.Thread(target=run_timers, args=(list(UWSGI['timers']), fd),
                         name='uwsgi-timers', daemon=True).start()
    if UWSGI['spooler'] is not None:
        run_spooler(UWSGI['spooler'])


def uwsgi_started():
    """After the app's import: the postfork hooks, then the wait for the
    timer token (outside gw, with no lock file: runner 1 alone)."""
    for f in list(UWSGI['postfork']):
        f()
    hook = getattr(sys.modules.get('uwsgi'), 'post_fork_hook', None)
    if callable(hook):
        hook()
    if (UWSGI['timers'] or UWSGI['spooler'] is not None) and (
            UWSGI['worker_id'] == 1 or UWSGI['lock_fd'] is not None):
        threading.Thread(target=run_token_holder, name='uwsgi-token', daemon=True).start()


def install_uwsgi_module(opts=None, control=None, slots=1):
    """sys.modules['uwsgi'] and ['uwsgidecorators'], unless the app's
    environment has real ones."""
    opts = opts or {}
    UWSGI['worker_id'] = opts.get('worker_id') or 1
    UWSGI['numproc'] = opts.get('numproc') or 1
    UWSGI['control'] = control
    UWSGI['lock_fd'] = opts.get('lock_fd')
    if opts.get('spooler'):
        UWSGI['spooler'] = os.path.abspath(opts['spooler'])
    if opts.get('cache_fd') is not None:
        sock = socket.socket(fileno=opts['cache_fd'])
        sock.setblocking(True)
        UWSGI['cache'] = (sock, sock.makefile('rb', buffering=READ_BUFFER))
    sys.modules.setdefault('uwsgi', make_uwsgi_module(opts, slots))
    sys.modules.setdefault('uwsgidecorators', make_uwsgidecorators_module())


def open_sessions(fd):
    """The session channel, served for WSGI apps (READY says websocket=true)."""
    global SESSIONS
    limit = os.environ.get('GW_WSGI_MAX_SESSIONS', '')
    SESSIONS = SessionChannel(fd, int(limit) if limit.isdigit() and int(limit) > 0 else WS_MAX_SESSIONS)
    SESSIONS.start()



if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
