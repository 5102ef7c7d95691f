#!/usr/bin/env python3
"""Test harness for gw_psgi.pl: plays the gateway side of the bridge protocol.

    python3 harness.py [-k SUBSTRING]

For each check it spawns the shim (GW_PERL, default /usr/bin/perl) with
socketpairs as --control-fd/--slot-fds, sends REQUEST_HEAD/BODY/END and PING
frames, and checks the frames that come back. Test apps live in ./apps.
The gateway side (frames, Runner, Result) is runners/testdata/bridgeharness.py,
shared with the other shims' harnesses.
Exit status 0 iff every check passed.
"""
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_DIR = os.path.dirname(HERE)
SHIM = os.path.join(SHIM_DIR, 'gw_psgi.pl')
APPS = os.path.join(HERE, 'apps')
REPO = os.path.dirname(os.path.dirname(SHIM_DIR))
PERL = os.environ.get('GW_PERL', '/usr/bin/perl')
sys.path.insert(0, os.path.join(REPO, 'runners', 'testdata'))
from bridgeharness import env_pairs, expect, gw, head_message  # noqa: E402
import bridgeharness  # noqa: E402


class Runner(bridgeharness.Runner):
    """gw_psgi.pl under test, without the caller's PLACK_ENV."""

    def __init__(self, app, *args, slots=1, cwd=None, env=None):
        super().__init__([PERL, SHIM], app, *args, slots=slots, cwd=cwd or HERE, env=env,
                         unset=('PLACK_ENV',))


def head_frame(env, scheme='', rid='', block=None):
    """REQUEST_HEAD for a flat ['NAME', value, ...] list; block=... sends that
    raw env_block."""
    return head_message(env_pairs(env), scheme, rid, block=block)


def apps(*args, **kw):
    return Runner('apps/apps.psgi', *args, **kw)


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
def selftest_golden():
    for d in (os.path.join(REPO, 'bridge', 'testdata', 'golden'),
              os.path.join(REPO, 'runners', 'python', 'testdata', 'golden_sample')):
        p = subprocess.run([PERL, SHIM, '--selftest', d], capture_output=True, text=True)
        last = p.stdout.strip().splitlines()[-1]
        expect(p.returncode == 0 and last.endswith(' passed, 0 failed'), (d, p.stdout, p.stderr))
        expect(not p.stderr, p.stderr)
    with tempfile.TemporaryDirectory() as d:  # a broken case fails, and says why
        with open(os.path.join(d, 'x.json'), 'w') as f:
            f.write('{"type": 18, "fields": {"seq": 8}}')
        with open(os.path.join(d, 'x.bin'), 'wb') as f:
            f.write(gw.message_frame(gw.PING, {'seq': 7}))
        p = subprocess.run([PERL, SHIM, '--selftest', d], capture_output=True, text=True)
        expect(p.returncode == 1 and 'FAIL x: decode: seq = 7, want 8' in p.stdout
               and p.stdout.endswith('0 passed, 1 failed\n'), p.stdout)


@check
def stray_client_gone_discarded():
    """CLIENT_GONE is for ASGI runners; gw_psgi.pl discards a stray one and
    serves the next request (bridge.proto)."""
    r = apps()
    try:
        r.ready()
        expect(r.request(path='/hello').body == b'Hello, World!', 'first request')
        r.slots[0].sendall(gw.encode_frame(gw.CLIENT_GONE, b''))
        res = r.request(path='/hello')
        expect(res.status == 200 and res.body == b'Hello, World!', res)
    finally:
        r.close()


@check
def hello():
    r = apps()
    try:
        ready = r.ready()
        expect(ready['protocol'] == 2 and ready['slots'] == 1 and ready['pid'] == r.proc.pid, ready)
        expect(ready['runtime'].startswith('perl 5.'), ready)
        res = r.request(path='/hello')
        expect(res.status == 200 and res.body == b'Hello, World!' and res.error == '', res)
        expect(res.headers == [('Content-Type', 'text/plain')] and res.head['block'], res)
        expect(len(res.frames) == 1, res.frames)
        res = r.request(path='/hello')
        expect(res.body == b'Hello, World!', res)
        res = r.request(path='/cookies')
        expect(res.headers == [('Content-Type', 'text/plain'), ('Set-Cookie', 'a=1'),
                               ('Set-Cookie', 'b=2'), ('X-Num', '42')], res)
        expect(r.request(path='/nope').status == 404, 'not found')
        # Two requests in one write: the second is already buffered when the first ends.
        end = gw.message_frame(gw.REQUEST_END, {})
        r.slots[0].sendall(b''.join(gw.message_frame(gw.REQUEST_HEAD, {'env': [b'PATH_INFO', p]}) + end
                                    for p in (b'/hello', b'/pid')))
        expect(r.read_response().body == b'Hello, World!', 'pipelined 1')
        expect(r.read_response().body == b'%d' % r.proc.pid, 'pipelined 2')
        expect(r.ping(2)['requests'] == 6, 'pipelined count')
    finally:
        r.close()


@check
def coalesced_writes():
    """head + body + end of an arrayref response arrive in one write."""
    r = apps()
    try:
        r.ready()
        r.send_request(path='/hello').join()
        time.sleep(0.3)
        data = r.slots[0].recv(65536)
        expect(data.endswith(struct.pack('<BBHI', gw.RESPONSE_END, 0, 0, 0)), data)
        expect(data.count(b'Hello, World!') == 1, data)
    finally:
        r.close()


@check
def load_behaviour():
    r = apps()
    try:
        r.ready()
        load = json.loads(r.request(path='/load').body)
        expect(load['dollar0'] == os.path.join(APPS, 'apps.psgi'), load)
        expect(load['findbin'] == APPS and load['cwd'] == APPS, load)
        expect(load['plack_env'] == 'deployment' and load['lib'] == 'from lib', load)
        expect(load['package'].startswith('GW::Sandbox::'), load)
    finally:
        r.close()
    r = Runner('apps.psgi', '--dir', APPS, '--callable', 'ignored', '--name', 'api', cwd='/',
               env={'PLACK_ENV': 'staging'})
    try:
        r.ready()
        load = json.loads(r.request(path='/load').body)
        expect(load['plack_env'] == 'staging' and load['cwd'] == APPS, load)
    finally:
        r.close()


@check
def environ():
    r = apps()
    try:
        r.ready()
        res = r.request(method='POST', path='/env', query='a=1&b=%20', body=b'',
                        headers=[('HTTP_X_NAME', b'caf\xc3\xa9'), ('CONTENT_TYPE', '')],
                        extra_env=['PATH_INFO', b'/env/caf\xc3\xa9', 'REQUEST_URI', '/env/caf%C3%A9?a=1&b=%20'],
                        scheme='https', rid='rid-42')
        env = json.loads(res.body)
        expect(env['PATH_INFO'] == '/env/caf\u00c3\u00a9', env['PATH_INFO'])
        expect(env['REQUEST_URI'] == '/env/caf%C3%A9?a=1&b=%20', env['REQUEST_URI'])
        expect(env['HTTP_X_NAME'] == 'caf\u00c3\u00a9', env['HTTP_X_NAME'])
        expect(env['QUERY_STRING'] == 'a=1&b=%20' and env['CONTENT_LENGTH'] == '0', env)
        expect('CONTENT_TYPE' not in env, 'empty CONTENT_TYPE must be dropped')
        expect(env['psgi.url_scheme'] == 'https' and env['gw.request_id'] == 'rid-42', env)
        expect(env['_version'] == [1, 1] and env['_types']['psgi.version'] == 'ARRAY', env)
        expect(env['psgi.multithread'] == '' and env['psgi.multiprocess'] == 1, env)
        expect(env['psgi.run_once'] == '' and env['psgi.nonblocking'] == '', env)
        expect(env['psgi.streaming'] == 1 and env['psgix.input.buffered'] == 1, env)
        expect(env['psgix.cleanup'] == 1 and env['psgix.harakiri'] == 1, env)
        expect(env['_types']['psgix.cleanup.handlers'] == 'ARRAY', env)
        expect(env['_types']['psgi.input'] == 'GW::Input' and env['_types']['psgi.errors'] == 'GLOB', env)
        expect(env['SCRIPT_NAME'] == '' and env['SERVER_NAME'] == 'localhost'
               and env['SERVER_PORT'] == '8080' and env['SERVER_PROTOCOL'] == 'HTTP/1.1', env)
        res = r.request(path='/env')
        env = json.loads(res.body)
        expect(env['psgi.url_scheme'] == 'http' and 'gw.request_id' not in env, env)
        expect('CONTENT_LENGTH' not in env and env['QUERY_STRING'] == '', env)
        # A sparse head: the required keys get defaults; SCRIPT_NAME is never '/'.
        r.slots[0].sendall(gw.message_frame(gw.REQUEST_HEAD, {'env': [
            b'SCRIPT_NAME', b'/', b'PATH_INFO', b'/env', b'HTTP_CONTENT_LENGTH', b'5']}))
        r.slots[0].sendall(gw.message_frame(gw.REQUEST_END, {}))
        env = json.loads(r.read_response().body)
        expect(env['SCRIPT_NAME'] == '' and env['REQUEST_METHOD'] == 'GET' and env['QUERY_STRING'] == ''
               and env['REQUEST_URI'] == '/env' and env['SERVER_PORT'] == '80', env)
        expect('HTTP_CONTENT_LENGTH' not in env, env)
        # A NUL in a value: that pair comes in env, the rest in env_block
        # (whose last value is empty here).
        r.slots[0].sendall(head_frame(['REQUEST_METHOD', 'GET', 'PATH_INFO', b'/env/a\0b', 'SERVER_PORT', '8080',
                                       'HTTP_X_EMPTY', '']) + gw.message_frame(gw.REQUEST_END, {}))
        env = json.loads(r.read_response().body)
        expect(env['PATH_INFO'] == '/env/a\0b' and env['HTTP_X_EMPTY'] == '', env)
        expect(env['REQUEST_METHOD'] == 'GET' and env['SERVER_PORT'] == '8080', env)
    finally:
        r.close()


@check
def plack_lint():
    r = Runner('apps/lint.psgi')
    try:
        r.ready()
        res = r.request(query='x=1')
        expect(res.status == 200 and res.body == b'ok:x=1' and res.error == '', (res, r.err()))
        res = r.request(method='POST', body=[b'hello ', b'world'], headers=[('CONTENT_TYPE', 'text/plain')])
        expect(res.body == b'ok:hello world:4:seek-ok' and res.error == '', (res, r.err()))
        res = r.request(method='POST', body=[b'abc', b'defg'], cl=False)
        expect(res.body == b'ok:abcdefg:3:seek-ok', (res, r.err()))
        res = r.request(path='/stream')
        expect([bytes(f) for f in res.frames] == [b'a', b'b', b'c'] and res.error == '', (res, r.err()))
        res = r.request(path='/delayed')
        expect(res.body == b'delayed' and res.error == '', (res, r.err()))
        expect(r.err() == '', r.err())
    finally:
        r.close()


@check
def dancer2_app():
    r = Runner('apps/dancer.psgi')
    try:
        r.ready()
        res = r.request(headers=[('HTTP_HOST', 'example.com')])
        expect(res.status == 200 and res.body == b'Hello from Dancer2', (res, r.err()))
        res = r.request(path='/hello/perl')
        expect(res.body == b'Hello, perl', res)
        form = b'b=2&a=caf%C3%A9'
        res = r.request(method='POST', path='/form', body=form,
                        headers=[('CONTENT_TYPE', 'application/x-www-form-urlencoded')])
        expect(res.status == 200 and res.body == 'a=café,b=2'.encode(), (res, r.err()))
        res = r.request(method='POST', path='/form', body=[form[:5], form[5:]], cl=False,
                        headers=[('CONTENT_TYPE', 'application/x-www-form-urlencoded')])
        expect(res.body == 'a=café,b=2'.encode(), (res, r.err()))
        expect(r.request(path='/env').body == b'deployment', 'PLACK_ENV')
        expect(r.request(path='/missing').status == 404, 'missing')
    finally:
        r.close()


@check
def partial_read_then_next_request():
    r = apps()
    try:
        r.ready()
        body1 = os.urandom(100000)
        res = r.request(method='POST', path='/partial', body=[body1[:50000], body1[50000:]])
        expect(res.body == body1[:10], res)
        res = r.request(method='POST', path='/partial', body=b'second body here')
        expect(res.body == b'second bod', res)
        res = r.request(method='POST', path='/partial', body=[b'abc', b'defghijklmnop'], cl=False)
        expect(res.body == b'abcdefghij', res)
    finally:
        r.close()


@check
def untouched_body_then_next_request():
    r = apps()
    try:
        r.ready()
        for _ in range(3):
            res = r.request(method='POST', path='/untouched', body=os.urandom(3 << 20))
            expect(res.body == b'did not read', res)
        expect(r.request(path='/hello').body == b'Hello, World!', 'next GET')
    finally:
        r.close()


@check
def upload_10mib_sha256():
    r = apps()
    try:
        r.ready()
        body = os.urandom(10 << 20)
        chunks = [body[i:i + 700001] for i in range(0, len(body), 700001)]
        t0 = time.time()
        res = r.request(method='POST', path='/digest', body=chunks)
        elapsed = time.time() - t0
        want = '%s %d %d' % (hashlib.sha256(body).hexdigest(), len(body), len(body))
        expect(res.body.decode() == want, res)
        res = r.request(method='POST', path='/request', body=chunks)
        expect(res.body.decode().startswith('%d %s' % (len(body), hashlib.sha256(body).hexdigest())), res)
        t1 = time.time()
        res = r.request(method='POST', path='/echo', body=chunks)
        echo = time.time() - t1
        expect(hashlib.sha256(res.body).digest() == hashlib.sha256(body).digest(), 'echo mismatch')
        print('    10 MiB upload+sha256: %.3fs, 10 MiB streamed echo: %.3fs' % (elapsed, echo))
    finally:
        r.close()


@check
def download_10mib_sha256():
    r = apps()
    try:
        r.ready()
        for path in ('/download', '/download_fh'):
            t0 = time.time()
            res = r.request(path=path)
            elapsed = time.time() - t0
            sha = dict(res.headers)['X-SHA256']
            expect(len(res.body) == 10 << 20 and hashlib.sha256(res.body).hexdigest() == sha, (path, res))
            expect(res.error == '', res)
            print('    10 MiB %s: %.3fs in %d frames' % (path, elapsed, len(res.frames)))
    finally:
        r.close()


@check
def chunked_body():
    r = apps()
    try:
        r.ready()
        parts = [os.urandom(n) for n in (1, 100000, 0, 70000, 3)]
        data = b''.join(parts)
        want = '%s %d %d' % (hashlib.sha256(data).hexdigest(), len(data), len(data))
        res = r.request(method='POST', path='/digest', body=parts, cl=False)
        expect(res.body.decode() == want, 'no CONTENT_LENGTH: buffered, then set: %r' % res)
        big = os.urandom(3 << 20)  # spills to the temp file
        res = r.request(method='POST', path='/request', body=[big[:12345], big[12345:]], cl=False)
        expect(res.body.decode().startswith('%d %s' % (len(big), hashlib.sha256(big).hexdigest())), res)
        res = r.request(method='POST', path='/request', body=[b'a=1&', b'b=two'], cl=False,
                        headers=[('CONTENT_TYPE', 'application/x-www-form-urlencoded')])
        expect(res.body.endswith(b' a=1,b=two'), res)
        res = r.request(method='POST', path='/digest', body=b'0123456789' * 3, extra_env=['CONTENT_LENGTH', '7'])
        expect(res.body.endswith(b' 7 7'), 'CONTENT_LENGTH must cap the body: %r' % res)
    finally:
        r.close()


@check
def input_seek_and_offsets():
    r = apps()
    try:
        r.ready()
        for size in (100, (1 << 20) + 4096):  # in memory, then spilled to the temp file
            body = bytes(range(97, 123)) * (size // 26) + b'xyz'
            res = r.request(method='POST', path='/seek', body=[body[:size // 2], body[size // 2:]])
            # What the builtin read() gives: 'cd', then 'c'+'fg' (offset -1), then NUL-padded to 5.
            want = [b'%d' % len(body), b'xyz', b'cfg\0\0h', b'8', b'neg-refused']
            expect(res.body.split(b'|') == want, (res, want))
    finally:
        r.close()


@check
def sigpipe_default_in_children():
    r = apps()
    try:
        r.ready()
        mask = int(r.request(path='/sigign').body.split()[1], 16)
        expect(not mask & (1 << (signal.SIGPIPE - 1)), 'SIGPIPE ignored in children: %x' % mask)
    finally:
        r.close()


@check
def delayed_streaming_frames():
    r = apps()
    try:
        r.ready()
        t0 = time.time()
        res = r.request(path='/stream')
        expect([bytes(f) for f in res.frames] == [b'one', b'two', b'three'] and res.error == '', res)
        gaps = [round(t - t0, 2) for t in res.times]
        expect(gaps[0] < 0.2 and 0.25 < gaps[1] < 0.5 and 0.55 < gaps[2] < 0.9, gaps)
        res = r.request(path='/delayed3')
        expect(res.status == 201 and res.body == b'delayed body' and res.error == '', res)
        res = r.request(path='/unclosed')
        expect(res.body == b'left open' and res.error == '', res)
        time.sleep(0.05)
        expect('/unclosed returned without closing its writer' in r.err(), r.err())
    finally:
        r.close()


@check
def getline_body():
    r = apps()
    try:
        r.ready()
        res = r.request(path='/getline')
        expect([bytes(f) for f in res.frames] == [b'a', b'bb', b'ccc'] and res.error == '', res)
        res = r.request(path='/getline_die')
        expect(res.status == 200 and res.body == b'a' and res.error == 'getline failed', res)
        expect(r.request(path='/close_count').body == b'2', 'close() runs even when getline dies')
    finally:
        r.close()



@check
def head_not_read():
    """HEAD: no body frames; a getline body is closed unread (getline 'DIE'
    would fail the request) and a streaming writer's writes are dropped."""
    r = apps()
    try:
        r.ready()
        before = int(r.request(path='/close_count').body)
        res = r.request(method='HEAD', path='/getline_die')
        expect(res.status == 200 and res.body == b'' and res.error == '', res)
        expect(int(r.request(path='/close_count').body) == before + 1, 'closed')
        for path in ('/hello', '/stream'):
            res = r.request(method='HEAD', path=path)
            expect(res.status == 200 and res.body == b'' and res.error == '', (path, res))
        expect(r.request(path='/hello').body == b'Hello, World!', 'GET after HEAD')
    finally:
        r.close()

@check
def app_errors():
    cases = {
        '/die': (None, 'boom before the head'),
        '/die_at': (None, 'boom with a line at %s/apps.psgi line ' % APPS),
        '/die_object': (None, 'My::Error=HASH('),
        '/die_stream': (200, 'late boom'),
        '/wide': (None, 'wide character in the response body'),
        '/bad_header': (None, 'invalid response header value for X-Bad (control character)'),
        '/bad_name': (None, "invalid response header name 'Bad Name'"),
        '/bad_status': (None, "invalid response status 'abc'"),
        '/not_array': (None, "the application returned 'just a string', not an array or code reference"),
        '/bad_body': (None, 'response body must be an array reference or a handle'),
        '/no_responder': (None, 'the delayed response returned without calling the responder'),
        '/twice': (200, None),
        '/write_after_close': (200, None),
    }
    r = apps()
    try:
        r.ready()
        for path, (status, error) in cases.items():
            res = r.request(path=path, rid='r' + path)
            if error is None:  # the response was already complete: only logged
                expect(res.status == status and res.error == '', (path, res))
            else:
                expect(res.status == status and res.error.startswith(error), (path, res))
                expect('\n' not in res.error, res.error)
            expect(r.request(path='/hello').body == b'Hello, World!', 'slot after ' + path)
        time.sleep(0.1)
        err = r.err()
        expect('gw_psgi: request GET /die (id r/die) failed: boom before the head\n' in err, err)
        expect('failed: writer: write() after close()' in err, err)
        expect('/twice (id r/twice) failed: the responder was called twice' in err, err)
        res = r.request(path='/latin1_upgraded')
        expect(res.body == b'caf\xe9', res)
    finally:
        r.close()


@check
def errors_stream_and_cleanup():
    r = apps()
    try:
        r.ready()
        expect(r.request(path='/errors').body == b'logged', 'errors')
        res = r.request(path='/cleanup')
        expect(res.body == b'cleanup queued' and res.error == '', res)
        expect(r.request(path='/cleanup_count').body == b'1', 'cleanup handler ran')
        time.sleep(0.05)
        err = r.err()
        expect('to psgi.errors\n' in err and 'cleanup ran for /cleanup\n' in err, err)
        expect('cleanup handler failed: cleanup boom' in err, err)
    finally:
        r.close()


@check
def harakiri_exits_after_response():
    r = apps()
    try:
        r.ready()
        res = r.request(path='/harakiri')
        expect(res.body == b'bye %d' % r.proc.pid and res.error == '', res)
        expect(r.wait(2) == 0, 'exit status %r' % r.proc.returncode)
    finally:
        r.close()


@check
def aborted_body():
    r = apps()
    try:
        r.ready()
        res = r.request(method='POST', path='/aborted', body=b'0123456789', abort='client went away',
                        cl=False, extra_env=['CONTENT_LENGTH', '100'])
        expect(res.body == b'request body aborted: client went away', res)
        # No CONTENT_LENGTH: the body is buffered before the app runs; aborted, the app never runs.
        res = r.request(method='POST', path='/aborted', body=b'0123456789', cl=False, abort='body limit')
        expect(res.status is None and res.error == 'request body aborted: body limit', res)
        res = r.request(method='POST', path='/aborted', body=b'0123456789')
        expect(res.body == b'no error: 10 bytes', res)
        # Every byte of CONTENT_LENGTH arrived: the app never reaches the abort.
        res = r.request(method='POST', path='/aborted', body=b'0123456789', abort='late')
        expect(res.body == b'no error: 10 bytes', res)
    finally:
        r.close()


@check
def ping_pong_counters():
    r = apps()
    try:
        r.ready()
        expect(r.ping(1) == {'seq': 1, 'requests': 0, 'busy': 0}, 'first pong')
        for _ in range(5):
            r.request(path='/hello')
        pong = r.ping(1 << 63)
        expect(pong == {'seq': 1 << 63, 'requests': 5, 'busy': 0}, pong)
        pong = r.ping((1 << 64) - 1)
        expect(pong['seq'] == (1 << 64) - 1, pong)
        # A ping sent during a request is answered right after it.
        t = r.send_request(path='/slow', query='0.5')
        time.sleep(0.1)
        t0 = time.time()
        pong = r.ping(9)
        expect(pong['requests'] == 6 and time.time() - t0 > 0.2, pong)
        expect(r.read_response().body == b'slept', 'slow')
    finally:
        r.close()


@check
def control_eof_exits():
    r = apps()
    try:
        r.ready()
        r.request(path='/hello')
        t0 = time.time()
        r.ctl_r.close()
        r.ctl.close()
        code = r.wait(1)
        expect(code == 0 and time.time() - t0 < 1, (code, time.time() - t0))
    finally:
        r.close()
    # Mid-request, EOF is noticed as soon as the request finishes, before the next one.
    r = apps()
    try:
        r.ready()
        r.send_request(path='/slow', query='0.5')
        time.sleep(0.1)
        r.ctl_r.close()
        r.ctl.close()
        r.send_request(path='/hello')
        res = r.read_response()
        expect(res.body == b'slept', res)
        code = r.wait(1)
        expect(code == 0, code)
        try:
            rest = r.slot_r[0].read()
        except ConnectionResetError:  # the unread /hello request resets the socket
            rest = b''
        expect(rest == b'', 'a request after the owner left was served: %r' % rest)
    finally:
        r.close()


@check
def gateway_killed_mid_request():
    """Everything closed during a streaming response: the next write exits."""
    r = apps()
    try:
        r.ready()
        r.send_request(path='/stream')
        time.sleep(0.1)
        t0 = time.time()
        r.ctl_r.close()
        r.ctl.close()
        for f in r.slot_r:
            f.close()
        for s in r.slots:
            s.close()
        code = r.wait(2)
        expect(code == 0 and time.time() - t0 < 0.5, (code, time.time() - t0))
    finally:
        r.close()


@check
def sigterm_exits():
    r = apps()
    try:
        r.ready()
        r.send_request(path='/slow', query='30')
        time.sleep(0.1)
        t0 = time.time()
        r.proc.send_signal(signal.SIGTERM)
        code = r.wait(1)
        expect(code == 0 and time.time() - t0 < 1, code)
    finally:
        r.close()


@check
def load_errors():
    cases = [
        (('apps/bad_syntax.psgi',), 'import', 'syntax error at %s/bad_syntax.psgi line 3' % APPS, 'near'),
        (('apps/raises.psgi',), 'import', 'config missing: DATABASE_URL', ''),
        (('apps/not_code.psgi',), 'callable', '%s/not_code.psgi returned a HASH reference' % APPS, ''),
        (('apps/missing.psgi',), 'import', 'cannot read %s/missing.psgi: No such file' % APPS, ''),
        (('apps/apps.psgi', '--bogus', '1'), 'args', "unknown argument '--bogus'", ''),
        (('apps/apps.psgi', '--dir', '/nonexistent-dir'), 'args', 'cannot chdir to /nonexistent-dir', ''),
    ]
    for args, stage, message, detail in cases:
        r = Runner(*args)
        try:
            ftype, msg = r.control_frame()
            expect(ftype == gw.LOAD_ERROR, (args, ftype, msg))
            expect(msg['stage'] == stage and msg['message'].startswith(message), (args, msg))
            expect('\n' not in msg['message'], msg)
            expect(detail in msg['detail'] and msg['message'] in msg['detail'], msg)
            expect(r.wait() == 4, 'exit status %r' % r.proc.returncode)
            expect(msg['detail'] in r.err(), 'detail not on stderr: %r' % r.err())
        finally:
            r.close()


@check
def protocol_errors_exit_3():
    for bad in (struct.pack('<BBHI', gw.REQUEST_HEAD, 0, 0, (16 << 20) + 1),
                gw.encode_frame(gw.RESPONSE_HEAD, b''),
                gw.encode_frame(gw.REQUEST_HEAD, b'\x0a\x05ab'),
                head_frame([], block=b'PATH_INFO\0/hello\0HTTP_X')):  # env_block: odd item count
        r = apps()
        try:
            r.ready()
            r.slots[0].sendall(bad)
            expect(r.wait(2) == 3, 'exit status %r' % r.proc.returncode)
            expect('gw_psgi: slot:' in r.err(), r.err())
        finally:
            r.close()


@check
def slot_eof_keeps_control():
    r = apps()
    try:
        r.ready()
        sock = r.slots[0]
        sock.sendall(gw.message_frame(gw.REQUEST_HEAD, {'env': [b'REQUEST_METHOD', b'POST',
                                                                 b'PATH_INFO', b'/echo',
                                                                 b'CONTENT_LENGTH', b'20']}))
        sock.sendall(gw.encode_frame(gw.REQUEST_BODY, b'x' * 10))
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        expect(r.proc.poll() is None, 'process must survive a closed slot')
        expect(r.ping(3)['requests'] == 1, 'control still answered')
    finally:
        r.close()


@check
def extra_slot_fds_closed():
    r = apps(slots=2)
    try:
        expect(r.ready()['slots'] == 1, 'one slot')
        expect(r.slot_r[1].read() == b'', 'the extra slot is closed')
        expect('serves one slot: closing extra slot fds' in r.err(), r.err())
        expect(r.request(path='/hello').body == b'Hello, World!', 'slot 0 serves')
    finally:
        r.close()


@check
def per_request_overhead():
    n = 2000
    r = apps()
    try:
        r.ready()
        for _ in range(50):
            r.request(path='/hello')
        head = head_frame([
            b'REQUEST_METHOD', b'GET', b'SCRIPT_NAME', b'', b'PATH_INFO', b'/hello', b'QUERY_STRING', b'',
            b'REQUEST_URI', b'/hello', b'SERVER_NAME', b'localhost', b'SERVER_PORT', b'8080',
            b'SERVER_PROTOCOL', b'HTTP/1.1', b'REMOTE_ADDR', b'127.0.0.1', b'REMOTE_PORT', b'5555',
            b'HTTP_HOST', b'localhost:8080', b'HTTP_USER_AGENT', b'curl/7.88.1', b'HTTP_ACCEPT', b'*/*'], 'http')
        frame = head + gw.message_frame(gw.REQUEST_END, {})
        sock, rfile = r.slots[0], r.slot_r[0]
        t0 = time.perf_counter()
        for _ in range(n):
            sock.sendall(frame)
            while gw.read_frame(rfile)[0] != gw.RESPONSE_END:
                pass
        per = (time.perf_counter() - t0) / n
        print('    %d sequential hello requests: %.1f us per request round trip' % (n, per * 1e6))
    finally:
        r.close()


def main():
    args = sys.argv[1:]
    only = args[args.index('-k') + 1] if '-k' in args else ''
    failed = 0
    print('shim interpreter: %s' % PERL)
    for fn in CHECKS:
        if only not in fn.__name__:
            continue
        t0 = time.time()
        try:
            fn()
            print('PASS %-36s %.2fs' % (fn.__name__, time.time() - t0))
        except Exception as e:
            failed += 1
            print('FAIL %-36s %s: %s' % (fn.__name__, type(e).__name__, str(e)[:2000]))
    print('%d failed' % failed)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
