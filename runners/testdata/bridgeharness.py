"""The gateway side of the bridge protocol, for the shims' test harnesses.

Each runners/<lang>/testdata/harness.py spawns its shim through Runner and
checks the frames that come back. REQUEST_HEAD and RESPONSE_HEAD are coded
here as the protocol-2 gateway does (bridge/messages.go); every other frame
uses the Python shim's codec, which its own golden selftest checks.
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'python'))
sys.dont_write_bytecode = True  # leave no __pycache__ in the source tree
import gw_wsgi as gw  # noqa: E402


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def uvarint(buf, pos):
    result = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def field(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def env_pairs(env):
    """['NAME', value, ...] (str or bytes) -> [(b'NAME', b'value'), ...]."""
    env = [e if isinstance(e, bytes) else e.encode('latin-1') for e in env]
    return list(zip(env[::2], env[1::2]))


def head_message(pairs, scheme='', rid='', extra=b'', block=None):
    """REQUEST_HEAD frame as the gateway builds it: pairs in env_block, but a
    pair whose value holds NUL in env (field 1). extra: raw fields put first;
    block: a raw env_block sent instead of the pairs' one."""
    env = b''.join(field(1, n) + field(1, v) for n, v in pairs if b'\0' in v)
    if block is None:
        block = b'\0'.join(x for n, v in pairs if b'\0' not in v for x in (n, v))
    payload = (extra + env + (field(2, scheme.encode()) if scheme else b'')
               + (field(3, rid.encode()) if rid else b'') + (field(4, block) if block else b''))
    return gw.encode_frame(gw.REQUEST_HEAD, payload)


def decode_response_head(payload):
    """ResponseHead -> {'status', 'headers': [name, value, ...] (headers, then
    header_block), 'fields': field numbers in order, 'block': header_block sent}."""
    msg = {'status': 0, 'headers': [], 'fields': [], 'block': False}
    pos = 0
    while pos < len(payload):
        key, pos = uvarint(payload, pos)
        msg['fields'].append(key >> 3)
        if key & 7 == 0:
            value, pos = uvarint(payload, pos)
            if key >> 3 == 1:
                msg['status'] = value
            continue
        assert key & 7 == 2, 'wire type %d in RESPONSE_HEAD' % (key & 7)
        size, pos = uvarint(payload, pos)
        data, pos = payload[pos:pos + size], pos + size
        if key >> 3 == 2:
            msg['headers'].append(data)
        elif key >> 3 == 3:
            items = data.split(b'\0')
            assert len(items) % 2 == 0 and data, 'header_block %r is not name/value pairs' % data
            msg['headers'] += items
            msg['block'] = True
    assert pos == len(payload), 'RESPONSE_HEAD overruns'
    assert len(msg['headers']) % 2 == 0, msg['headers']
    return msg


class Result:
    """One response as the gateway sees it."""

    def __init__(self):
        self.head = None      # decode_response_head's dict, or None
        self.frames = []      # RESPONSE_BODY payloads
        self.times = []       # arrival time of each RESPONSE_BODY
        self.end = None       # decoded ResponseEnd

    @property
    def status(self):
        return self.head['status'] if self.head else None

    @property
    def headers(self):
        h = self.head['headers'] if self.head else []
        return [(h[i].decode('latin-1'), h[i + 1].decode('latin-1')) for i in range(0, len(h), 2)]

    @property
    def body(self):
        return b''.join(self.frames)

    @property
    def error(self):
        return self.end['error']

    def __repr__(self):
        return 'Result(status=%r, headers=%r, body=%r, error=%r)' % (
            self.status, self.headers, self.body[:300], self.end and self.error)


class Runner:
    """One shim process (cmd + --app app + args) and the gateway ends of its
    sockets. env is added to the environment, unset taken out of it;
    pass_fds are more descriptors the shim inherits (named in args)."""

    # CGI variables every request carries after the standard ones.
    extra_env = ()

    def __init__(self, cmd, app, *args, slots=1, cwd=None, env=None, unset=(), pass_fds=()):
        self.ctl, child_ctl = socket.socketpair()
        pairs = [socket.socketpair() for _ in range(slots)]
        self.slots = [a for a, _ in pairs]
        child = [child_ctl] + [b for _, b in pairs]
        self.stderr = tempfile.TemporaryFile()
        cmd = list(cmd) + ['--app', app] + list(args) + [
            '--control-fd', str(child_ctl.fileno()),
            '--slot-fds', ','.join(str(b.fileno()) for _, b in pairs)]
        environ = {k: v for k, v in os.environ.items() if k not in unset}
        environ.update(env or {})
        self.proc = subprocess.Popen(cmd, pass_fds=[s.fileno() for s in child] + list(pass_fds),
                                     stderr=self.stderr, cwd=cwd, env=environ)
        for s in child:
            s.close()
        for s in [self.ctl] + self.slots:
            s.settimeout(20)
        self.ctl_r = self.ctl.makefile('rb')
        self.slot_r = [s.makefile('rb') for s in self.slots]

    def control_frame(self):
        ftype, payload = gw.read_frame(self.ctl_r)
        return ftype, gw.decode_message(ftype, payload)

    def ready(self):
        try:
            ftype, msg = self.control_frame()
        except EOFError:
            raise AssertionError('no READY; stderr:\n' + self.err()) from None
        assert ftype == gw.READY, 'expected READY, got %d %r\n%s' % (ftype, msg, self.err())
        return msg

    def ping(self, seq):
        self.ctl.sendall(gw.message_frame(gw.PING, {'seq': seq}))
        ftype, msg = self.control_frame()
        assert ftype == gw.PONG and msg['seq'] == seq, (ftype, msg)
        return msg

    def head_pairs(self, method='GET', path='/', query='', body=None, cl=True, headers=(),
                   extra_env=(), raw_path=None, script_name=''):
        """The body chunks and CGI pairs of one request."""
        chunks = [] if body is None else ([body] if isinstance(body, bytes) else list(body))
        raw = raw_path if raw_path is not None else script_name + path
        env = ['REQUEST_METHOD', method, 'SCRIPT_NAME', script_name, 'PATH_INFO', path,
               'QUERY_STRING', query, 'REQUEST_URI', raw + ('?' + query if query else ''),
               'SERVER_NAME', 'localhost', 'SERVER_PORT', '8080',
               'SERVER_PROTOCOL', 'HTTP/1.1', 'REMOTE_ADDR', '127.0.0.1', 'REMOTE_PORT', '5555']
        if body is not None and cl:
            env += ['CONTENT_LENGTH', str(sum(len(c) for c in chunks))]
        env += [x for pair in self.extra_env for x in pair]
        for name, value in headers:
            env += [name, value]
        return chunks, env_pairs(env + list(extra_env))

    def head_frame(self, scheme='', rid='', **kw):
        chunks, pairs = self.head_pairs(**kw)
        return chunks, head_message(pairs, scheme, rid)

    def send_request(self, slot=0, abort=None, gap=0, **kw):
        """Sends one request from a thread (so big bodies never deadlock);
        gap: seconds to wait before each body chunk."""
        chunks, head = self.head_frame(**kw)
        sock = self.slots[slot]

        def send():
            try:
                sock.sendall(head)
                for c in chunks:
                    if gap:
                        time.sleep(gap)
                    for off in range(0, max(len(c), 1), gw.MAX_BODY_FRAME):
                        sock.sendall(gw.encode_frame(gw.REQUEST_BODY, c[off:off + gw.MAX_BODY_FRAME]))
                end = {'aborted': True, 'reason': abort} if abort else {}
                sock.sendall(gw.message_frame(gw.REQUEST_END, end))
            except OSError:
                pass
        t = threading.Thread(target=send, daemon=True)
        t.start()
        return t

    def read_response(self, slot=0):
        r = Result()
        rfile = self.slot_r[slot]
        while True:
            ftype, payload = gw.read_frame(rfile)
            if ftype == gw.RESPONSE_HEAD:
                assert r.head is None and not r.frames, 'second or late RESPONSE_HEAD'
                r.head = decode_response_head(payload)
            elif ftype == gw.RESPONSE_BODY:
                assert r.head is not None, 'RESPONSE_BODY before RESPONSE_HEAD'
                assert 0 < len(payload) <= gw.MAX_BODY_FRAME, len(payload)
                r.frames.append(payload)
                r.times.append(time.time())
            elif ftype == gw.RESPONSE_END:
                r.end = gw.decode_message(ftype, payload)
                return r
            else:
                raise AssertionError('unexpected frame type %d on a slot' % ftype)

    def request(self, slot=0, **kw):
        t = self.send_request(slot, **kw)
        r = self.read_response(slot)
        t.join(10)
        return r

    def wait(self, timeout=5):
        return self.proc.wait(timeout)

    def err(self):
        self.stderr.seek(0)
        return self.stderr.read().decode('utf-8', 'replace')

    def close(self):
        self.ctl_r.close()  # a makefile() keeps the fd open until it is closed too
        self.ctl.close()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in self.slot_r:
            f.close()
        for s in self.slots:
            s.close()


def expect(cond, what):
    if not cond:
        raise AssertionError(what)
