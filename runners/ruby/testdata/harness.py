#!/usr/bin/env python3
"""Test harness for gw_rack.rb: plays the gateway side of the bridge protocol.

    python3 harness.py [-k SUBSTRING] [--rack-lib DIR] [--bench N]

For each check it spawns the shim (GW_RUBY, default /usr/bin/ruby) with
socketpairs as --control-fd/--slot-fds, sends REQUEST_HEAD/BODY/END and PING
frames, and checks the frames that come back. Test apps live in ./apps.

--rack-lib DIR (or GW_RACK_LIB) puts another rack's lib/ first on RUBYLIB, so
the same checks run against Rack 3 (e.g. `git archive v3.2.7 lib` of
rack/rack). Checks that need a framework built for Rack 2 (Sinatra 3) skip
themselves there. --bench N times N sequential requests per app shape.
Exit status 0 iff every check passed.
"""
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(os.path.dirname(HERE), 'gw_rack.rb')
APPS = os.path.join(HERE, 'apps')
GOLDEN = os.path.join(HERE, '..', '..', '..', 'bridge', 'testdata', 'golden')
RUBY = os.environ.get('GW_RUBY', '/usr/bin/ruby')
RACK_LIB = os.environ.get('GW_RACK_LIB', '')
sys.path.insert(0, os.path.join(HERE, '..', '..', 'testdata'))
from bridgeharness import expect, field as _field, gw, head_message  # noqa: E402
import bridgeharness  # noqa: E402


class Runner(bridgeharness.Runner):
    """gw_rack.rb under test, without the caller's RACK_ENV or Gemfile."""

    extra_env = (('HTTP_HOST', 'localhost:8080'),)

    def __init__(self, app, *args, slots=1, cwd=None, env=None):
        env = dict({'RUBYLIB': RACK_LIB} if RACK_LIB else {}, **(env or {}))
        super().__init__([RUBY, SHIM], app, *args, slots=slots, cwd=cwd or HERE, env=env,
                         unset=('RACK_ENV', 'BUNDLE_GEMFILE'))


def rack3():
    out = subprocess.run([RUBY, '-e', 'require "rack"; print Rack.release'], capture_output=True,
                         env=dict(os.environ, RUBYLIB=RACK_LIB) if RACK_LIB else None)
    return out.stdout.decode().startswith('3')


RACK3 = None


class Skip(Exception):
    pass


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def run_app(app, fn, *args, **kw):
    r = Runner(app, *args, **kw)
    try:
        r.ready()
        fn(r)
    except AssertionError as e:
        raise AssertionError('%s\n--- shim stderr:\n%s' % (e, r.err()[-3000:])) from None
    finally:
        r.close()


@check
def selftest_golden():
    out = subprocess.run([RUBY, SHIM, '--selftest', GOLDEN], capture_output=True, text=True)
    expect(out.returncode == 0 and out.stdout.endswith(' 0 failed\n'), out.stdout + out.stderr)
    with tempfile.TemporaryDirectory() as d:
        for f in ('ping.bin', 'ping.json', 'pong.bin', 'pong.json'):
            shutil.copy(os.path.join(GOLDEN, f), d)
        with open(os.path.join(d, 'pong.json'), 'w') as f:
            json.dump({'type': 19, 'fields': {'seq': 301}}, f)
        out = subprocess.run([RUBY, SHIM, '--selftest', d], capture_output=True, text=True)
        expect(out.returncode == 1 and out.stdout.splitlines()[-1] == '1 passed, 1 failed', out.stdout)
        expect('FAIL pong: ' in out.stdout, out.stdout)


@check
def hello():
    def t(r):
        res = r.request()
        expect(res.status == 200 and res.body == b'Hello, World!' and res.error == '', res)
        expect(res.headers == [('content-type', 'text/plain')], res)
        expect(res.head['fields'] == [1, 3], 'status and header_block only: %r' % res.head['fields'])
        expect(len(res.frames) == 1, res.frames)
        expect(r.request().body == b'Hello, World!', 'second request')
    r = Runner('apps/hello.ru')
    try:
        ready = r.ready()
        expect(ready['protocol'] == 2 and ready['slots'] == 1 and ready['pid'] == r.proc.pid, ready)
        expect(ready['runtime'].startswith('ruby 3.'), ready)
        t(r)
    finally:
        r.close()


@check
def stray_client_gone_discarded():
    """CLIENT_GONE is for ASGI runners; gw_rack.rb discards a stray one and
    serves the next request (bridge.proto)."""
    def t(r):
        expect(r.request().body == b'Hello, World!', 'first request')
        r.slots[0].sendall(gw.encode_frame(gw.CLIENT_GONE, b''))
        res = r.request()
        expect(res.status == 200 and res.body == b'Hello, World!', res)
    run_app('apps/hello.ru', t)


@check
def hello_coalesced_one_write():
    # Head + body + end of an Array body leave in one write(2): with the
    # socket's receive side idle, all three frames are readable at once.
    def t(r):
        chunks, head = r.head_frame(path='/hello')
        r.slots[0].sendall(head + gw.message_frame(gw.REQUEST_END, {}))
        time.sleep(0.3)
        data = r.slots[0].recv(65536, socket.MSG_PEEK)
        expect(data.endswith(struct.pack('<BBHI', gw.RESPONSE_END, 0, 0, 0)), data)
        r.read_response()
    run_app('apps/apps.ru', t)


@check
def environ():
    def t(r):
        res = r.request(method='POST', path='/env/caf\xc3\xa9 x', raw_path='/env/caf%C3%A9%20x',
                        query='a=1&b=%20', body=b'',
                        headers=[('HTTP_X_NAME', b'caf\xc3\xa9'), ('CONTENT_TYPE', '')],
                        scheme='https', rid='rid-42')
        env = json.loads(res.body)
        expect(env['PATH_INFO'] == '/env/caf%C3%A9%20x', 'raw PATH_INFO: %r' % env['PATH_INFO'])
        expect(env['REQUEST_URI'] == '/env/caf%C3%A9%20x?a=1&b=%20', env['REQUEST_URI'])
        expect(env['HTTP_X_NAME'] == 'caf\u00c3\u00a9' and env['_enc']['HTTP_X_NAME'] == 'ASCII-8BIT', env)
        expect(env['QUERY_STRING'] == 'a=1&b=%20' and env['CONTENT_LENGTH'] == '0', env)
        expect('CONTENT_TYPE' not in env, 'empty CONTENT_TYPE must be dropped')
        expect(env['rack.url_scheme'] == 'https' and env['gw.request_id'] == 'rid-42', env)
        expect(env['SERVER_SOFTWARE'] == 'gw' and env['SERVER_PORT'] == '8080', env)
        expect(env['HTTP_HOST'] == 'localhost:8080' and env['SERVER_NAME'] == 'localhost', env)
        expect(env['rack.multithread'] is True and env['rack.multiprocess'] is True, env)
        expect(env['rack.run_once'] is False and env['rack.hijack?'] is False, env)
        if RACK3:
            expect('rack.version' not in env, 'Rack 3 removed rack.version')
        else:
            expect(env['rack.version'] == [1, 3], env)
        expect(env['_input_methods'] == ['gets', 'each', 'read', 'rewind', 'close'], env)
        expect(env['_errors_methods'] == ['puts', 'write', 'flush'], env)
        expect(env['_types']['rack.response_finished'] == 'Array', env)
        # A path gw decoded but whose raw form disagrees (normalised): gw's wins.
        res = r.request(path='/env/a/b', raw_path='/env/a/./b')
        expect(json.loads(res.body)['PATH_INFO'] == '/env/a/b', res)
        # %2F stays encoded; a decoded '#' would fail Rack 3.1's Lint.
        res = r.request(path='/env/a/b#c', raw_path='/env/a%2Fb%23c')
        expect(json.loads(res.body)['PATH_INFO'] == '/env/a%2Fb%23c', res)
        # Mounted under SCRIPT_NAME; absolute-form request target.
        res = r.request(script_name='/mnt', path='/env/x y', raw_path='http://h:1/mnt/env/x%20y')
        env = json.loads(res.body)
        expect(env['SCRIPT_NAME'] == '/mnt' and env['PATH_INFO'] == '/env/x%20y', env)
        res = r.request(path='/env', extra_env=['CONTENT_LENGTH', '', 'HTTP_HOST', ''])
        env = json.loads(res.body)
        expect('CONTENT_LENGTH' not in env and env['QUERY_STRING'] == '', env)
        expect(env['rack.url_scheme'] == 'http' and 'gw.request_id' not in env, env)
        # No Host at all (HTTP/1.0): HTTP_HOST from SERVER_NAME/PORT; IPv6 bracketed.
        _, pairs = r.head_pairs(path='/env')
        pairs = [(k, b'::1' if k == b'SERVER_NAME' else v) for k, v in pairs if k != b'HTTP_HOST']
        r.slots[0].sendall(head_message(pairs) + gw.message_frame(gw.REQUEST_END, {}))
        env = json.loads(r.read_response().body)
        expect(env['SERVER_NAME'] == '[::1]' and env['HTTP_HOST'] == '[::1]:8080', env)
        # Nothing at all: defaults.
        r.slots[0].sendall(head_message([(b'PATH_INFO', b'/env')]) + gw.message_frame(gw.REQUEST_END, {}))
        env = json.loads(r.read_response().body)
        expect(env['REQUEST_METHOD'] == 'GET' and env['SCRIPT_NAME'] == '' and env['QUERY_STRING'] == '', env)
        expect(env['SERVER_PROTOCOL'] == 'HTTP/1.1' and env['HTTP_HOST'] == 'localhost', env)
        # A value holding NUL comes in env, the rest in env_block; a last empty value survives.
        res = r.request(path='/env/a\0b', raw_path='/env/a%00b', extra_env=['HTTP_X_LAST', ''])
        env = json.loads(res.body)
        expect(env['PATH_INFO'] == '/env/a%00b' and env['HTTP_X_LAST'] == '', env)
        expect(env['HTTP_HOST'] == 'localhost:8080', env)
        # An env_block whose length takes a 3-byte varint.
        res = r.request(path='/env', headers=[('HTTP_X_BIG', 'b' * 20000)])
        expect(json.loads(res.body)['HTTP_X_BIG'] == 'b' * 20000, res)
        # A field gw does not send (number 5) takes the generic decoder, with the same result.
        _, pairs = r.head_pairs(path='/env/x', query='q=1')
        extra = b'\x28\x07' + _field(1, b'HTTP_X_OLD') + _field(1, b'v')
        r.slots[0].sendall(head_message(pairs, 'https', 'rid-7', extra) + gw.message_frame(gw.REQUEST_END, {}))
        env = json.loads(r.read_response().body)
        expect(env['PATH_INFO'] == '/env/x' and env['QUERY_STRING'] == 'q=1' and env['HTTP_X_OLD'] == 'v', env)
        expect(env['rack.url_scheme'] == 'https' and env['gw.request_id'] == 'rid-7', env)
    run_app('apps/apps.ru', t, slots=2)


@check
def lint_every_request():
    def t(r):
        ok = lambda res, what: expect(res.status == 200 and res.error == '', (what, res))  # noqa: E731
        res = r.request(path='/hello')
        ok(res, 'hello')
        body = b'abcdefg\nline two\nline three\nrest'
        res = r.request(method='POST', path='/pieces', body=[body[:5], body[5:20], body[20:]],
                        headers=[('CONTENT_TYPE', 'text/plain')])
        ok(res, 'pieces')
        want = ['abc', 'defg', 'defg', '\n', 'line two\n', 'line three\n', 'rest', None, '', '']
        expect(json.loads(res.body) == want + ([] if RACK3 else [body.decode()]), res)
        res = r.request(method='POST', path='/pieces', body=body, cl=False)
        ok(res, 'pieces chunked')
        res = r.request(method='POST', path='/digest', body=os.urandom(3 << 20))
        ok(res, 'digest')
        expect(res.body.endswith(b' no-rewind' if RACK3 else b' rewound-ok'), res)
        res = r.request(path='/cookies')
        ok(res, 'cookies')
        expect([v for k, v in res.headers if k == 'set-cookie'] == ['a=1', 'b=2'], res.headers)
        ok(r.request(path='/to_path'), 'to_path')
        ok(r.request(path='/stream3'), 'stream3')
        ok(r.request(path='/download', query='100000'), 'download')
        ok(r.request(path='/env'), 'env')
        ok(r.request(method='HEAD', path='/head'), 'HEAD')
        res = r.request(method='HEAD', path='/head_body')
        ok(res, 'HEAD with a body: not iterated')
        expect(res.body == b'' and ('content-length', '5') in res.headers, res)
        expect(r.request(path='/head_body').body == b'hello', 'GET with a body')
        ok(r.request(path='/finished'), 'finished')
        ok(r.request(path='/closed_ok'), 'closed_ok')
        if RACK3:
            res = r.request(path='/call3')
            ok(res, 'call3')
            expect(res.body == b'part0part1part2', res)
        ok(r.request(path='/hello', method='OPTIONS'), 'OPTIONS')
        time.sleep(0.1)
        err = r.err()
        expect('LintError' not in err and 'failed' not in err, err)
        expect('pieces app read %d bytes' % (0 if RACK3 else 32) in err and 'a\nb\n' in err, err)
    run_app('apps/lint.ru', t, slots=2)


@check
def sinatra_app():
    if RACK3:
        raise Skip('Sinatra 3 needs Rack 2')
    if subprocess.run([RUBY, '-e', 'require "sinatra/base"'], capture_output=True).returncode:
        raise Skip('sinatra is not installed')

    def t(r):
        res = r.request(headers=[('HTTP_HOST', 'example.com')])
        expect(res.status == 200 and res.body == b'sinatra ok', res)
        res = r.request(path='/hello/w\xc3\xb6rld', raw_path='/hello/w%C3%B6rld')
        expect(res.body == 'hello wörld'.encode(), res)
        # A file literally named "a%20b": raw PATH_INFO keeps it; a decoded one would decode twice.
        res = r.request(path='/files/a%20b', raw_path='/files/a%2520b')
        expect(res.body == b'file=a%20b', res)
        res = r.request(method='POST', path='/form', body=b'a=1&b=two+words',
                        headers=[('CONTENT_TYPE', 'application/x-www-form-urlencoded')])
        expect(res.body == b'a=1 b=two words', res)
        payload = json.dumps({'a': [1, 2], 'caf\u00e9': True}).encode()
        for body, cl in ((payload, True), ([payload[:5], payload[5:]], False)):
            res = r.request(method='POST', path='/json', body=body, cl=cl,
                            headers=[('CONTENT_TYPE', 'application/json')])
            expect(res.status == 200 and json.loads(res.body) == {
                'got': {'a': [1, 2], 'caf\u00e9': True}, 'length': len(payload)}, res)
        form = (b'--XX\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n'
                b'--XX\r\nContent-Disposition: form-data; name="up"; filename="a.txt"\r\n'
                b'Content-Type: text/plain\r\n\r\nfile body\r\n--XX--\r\n')
        res = r.request(method='POST', path='/upload', body=form,
                        headers=[('CONTENT_TYPE', 'multipart/form-data; boundary=XX')])
        expect(res.body == b'v|a.txt|file body', res)
        res = r.request(path='/stream')
        expect(res.body == b'0\n1\n2\n', res)
        res = r.request(path='/fail')
        expect(res.status == 500 and res.error == '', res)
        res = r.request(path='/missing')
        expect(res.status == 404, res)
        res = r.request(path='/env', scheme='https', headers=[('HTTP_HOST', 'example.com')])
        expect(res.body == b'production example.com 443 https', res)
    run_app('apps/sinatra/config.ru', t, slots=2)


@check
def upload_10mib_sha256():
    def t(r):
        body = os.urandom(10 << 20)
        chunks = [body[i:i + 700001] for i in range(0, len(body), 700001)]
        t0 = time.time()
        res = r.request(method='POST', path='/digest', body=chunks)
        elapsed = time.time() - t0
        want = '%s %d rewound-ok' % (hashlib.sha256(body).hexdigest(), len(body))
        expect(res.body.decode() == want, res)
        print('    10 MiB upload (read in 64 KiB pieces, spooled, rewound, re-read): %.3fs' % elapsed)
        t0 = time.time()
        res = r.request(method='POST', path='/echo', body=chunks)
        elapsed = time.time() - t0
        expect(hashlib.sha256(res.body).digest() == hashlib.sha256(body).digest(), 'echo mismatch')
        print('    10 MiB echo round trip: %.3fs' % elapsed)
    run_app('apps/apps.ru', t)


def vm_hwm_kib(pid):
    with open('/proc/%d/status' % pid) as f:
        return next(int(line.split()[1]) for line in f if line.startswith('VmHWM'))


@check
def upload_256mib_not_in_memory():
    """rack.input spools past 1 MiB to a temp file: peak RSS must not track the body."""
    def t(r):
        r.request(path='/hello')
        before = vm_hwm_kib(r.proc.pid)
        block = os.urandom(1 << 20)
        sha = hashlib.sha256()
        for _ in range(256):
            sha.update(block)
        res = r.request(method='POST', path='/digest', body=(block for _ in range(256)))
        expect(res.body.decode() == '%s %d rewound-ok' % (sha.hexdigest(), 256 << 20), res)
        grew = (vm_hwm_kib(r.proc.pid) - before) >> 10
        print('    256 MiB upload read, rewound and re-read: peak RSS grew %d MiB' % grew)
        expect(grew < 128, 'peak RSS grew %d MiB' % grew)
    if RACK3:
        raise Skip('the same code path as Rack 2')
    run_app('apps/apps.ru', t)


@check
def download_10mib_sha256():
    want = subprocess.run([RUBY, '-e', 'print Random.new(42).bytes(10 << 20)'], capture_output=True).stdout
    expect(len(want) == 10 << 20, len(want))

    def t(r):
        for path in ('/download', '/download_each'):
            t0 = time.time()
            res = r.request(path=path, query=str(10 << 20))
            elapsed = time.time() - t0
            expect(hashlib.sha256(res.body).digest() == hashlib.sha256(want).digest(), path)
            print('    10 MiB download %-15s %d frames, %.3fs' % (path, len(res.frames), elapsed))
    run_app('apps/apps.ru', t)


@check
def chunked_body():
    def t(r):
        parts = [os.urandom(n) for n in (1, 100000, 0, 70000, 3)]
        data = b''.join(parts)
        res = r.request(method='POST', path='/digest', body=parts, cl=False)
        expect(res.body.decode() == '%s %d rewound-ok' % (hashlib.sha256(data).hexdigest(), len(data)), res)
        res = r.request(method='POST', path='/digest', body=b'0123456789' * 3, extra_env=['CONTENT_LENGTH', '7'])
        expect(res.body.split()[1] == b'7', 'CONTENT_LENGTH must cap the body: %r' % res)
        res = r.request(method='POST', path='/lines', body=[b'first line\nsec', b'ond\nthird\n', b'fourth\nlast'],
                        cl=False)
        expect(json.loads(res.body) == ['first line\n', 'second\n', 'third\n', 'fourth\n', 'last'], res)
    run_app('apps/apps.ru', t)


@check
def unread_body_then_next_request():
    def t(r):
        body1 = os.urandom(100000)
        res = r.request(method='POST', path='/partial', body=[body1[:50000], body1[50000:]])
        expect(res.body == body1[:10], res)
        res = r.request(method='POST', path='/partial', body=b'second body here')
        expect(res.body == b'second bod', res)
        for _ in range(3):
            res = r.request(method='POST', path='/untouched', body=os.urandom(3 << 20))
            expect(res.body == b'did not read', res)
        res = r.request(method='POST', path='/echo', body=b'still in sync')
        expect(res.body == b'still in sync', res)
    run_app('apps/apps.ru', t)


@check
def streaming_each_frames():
    def t(r):
        res = r.request(path='/stream3')
        expect([bytes(f) for f in res.frames] == [b'chunk0', b'chunk1', b'chunk2'], res.frames)
        gaps = [b - a for a, b in zip(res.times, res.times[1:])]
        expect(all(g > 0.15 for g in gaps), 'frames not sent as they came: %r' % gaps)
        if RACK3:
            res = r.request(path='/call3')
            expect([bytes(f) for f in res.frames] == [b'part0', b'part1', b'part2'], res.frames)
            gaps = [b - a for a, b in zip(res.times, res.times[1:])]
            expect(all(g > 0.15 for g in gaps), 'stream writes not sent at once: %r' % gaps)
    run_app('apps/apps.ru', t)


@check
def app_errors():
    cases = {
        '/boom': (None, 'apps.rb:'),
        '/closing': (200, 'apps.rb:'),
        '/nonstring': (None, 'response body chunks must be Strings, not Integer (TypeError)'),
        '/bad_header': (None, 'invalid response header x-bad: "a\\rb" (ArgumentError)'),
        '/bad_name': (None, 'invalid response header name "bad name" (ArgumentError)'),
        '/bad_status': (None, 'invalid status 42'),
        '/no_body': (None, 'response body Integer responds to neither each nor call (TypeError)'),
        '/boom_binary': (None, 'bad bytes ?? (RuntimeError)'),  # RESPONSE_END.error must be UTF-8
    }
    wants = {'/boom': 'boom before response (ArgumentError)', '/closing': 'iteration failed (RuntimeError)'}

    def t(r):
        for path, (status, error) in cases.items():
            res = r.request(path=path)
            expect(res.status == status and error in res.error, (path, res))
            expect(wants.get(path, '') in res.error and '\n' not in res.error, (path, res.error))
            if status is None:
                expect(res.frames == [], res)
            expect(r.request(path='/hello').body == b'Hello, World!', 'slot works after ' + path)
        time.sleep(0.1)
        expect('gw_rack: request GET /boom failed:' in r.err() and 'apps.rb' in r.err(), r.err())
        # close runs once per request, even when iteration raises.
        for _ in range(2):
            r.request(path='/closing')
        r.request(path='/closed_ok')
        expect(r.request(path='/close_count').body == b'4', 'close count')
        res = r.request(path='/string_status')
        expect(res.status == 201 and res.body == b'created', res)
    run_app('apps/apps.ru', t)


@check
def response_shapes():
    def t(r):
        res = r.request(path='/header_forms')
        expect(res.headers == [('x-multi', '1'), ('x-multi', '2'), ('X-Upper', 'u'), ('x-empty', ''),
                               ('content-type', 'text/plain')], res.headers)
        expect(res.frames == [] and res.error == '', res)
        res = r.request(path='/big')
        expect([len(f) for f in res.frames] == [1 << 20] * 3 + [5], [len(f) for f in res.frames])
        res = r.request(path='/many')
        expect(res.body == b''.join(b'%d,' % i for i in range(1000)), res)
        res = r.request(path='/to_path')
        with open(os.path.join(APPS, 'apps.rb'), 'rb') as f:
            expect(res.body == f.read() and len(res.frames) == 1, (len(res.frames), res))
        expect(r.request(path='/threads').body == b'[0, 1, 2, 3]', 'threads')
        r.request(path='/finished')
        res = r.request(path='/finished_log')
        expect(res.body == b'second 200,first 200 nil', res)
    run_app('apps/apps.ru', t)


@check
def aborted_body():
    def t(r):
        res = r.request(method='POST', path='/aborted', body=b'0123456789', abort='client went away', cl=False,
                        extra_env=['CONTENT_LENGTH', '100'])
        expect(res.body == b'request body aborted: client went away', res)
        res = r.request(method='POST', path='/aborted', body=b'0123456789', cl=False, abort='body limit')
        expect(res.body == b'request body aborted: body limit', res)
        res = r.request(method='POST', path='/aborted', body=b'0123456789')
        expect(res.body == b'no error: 10 bytes', res)
        # Every byte of CONTENT_LENGTH arrived: the app never reaches the abort.
        res = r.request(method='POST', path='/aborted', body=b'0123456789', abort='late')
        expect(res.body == b'no error: 10 bytes', res)
    run_app('apps/apps.ru', t)


@check
def ping_pong_counters():
    def t(r):
        expect(r.ping(1) == {'seq': 1, 'requests': 0, 'busy': 0}, 'first pong')
        for _ in range(5):
            r.request(path='/hello')
        deadline = time.time() + 2
        while r.ping(7)['requests'] != 5 and time.time() < deadline:
            time.sleep(0.01)
        pong = r.ping(1 << 63)
        expect(pong == {'seq': 1 << 63, 'requests': 5, 'busy': 0}, pong)
        # Unknown control frame types are ignored.
        r.ctl.sendall(gw.encode_frame(99, b'junk'))
        expect(r.ping(2)['seq'] == 2, 'ping after junk')
    run_app('apps/apps.ru', t)


@check
def two_slots_concurrent():
    def t(r):
        t0 = time.time()
        ts = [r.send_request(slot=i, path='/slow', query='0.6') for i in range(2)]
        time.sleep(0.3)
        busy = r.ping(5)['busy']
        res = [r.read_response(i) for i in range(2)]
        elapsed = time.time() - t0
        for th in ts:
            th.join()
        expect(all(x.status == 200 for x in res), res)
        expect({x.body for x in res} == {b'api-slot-0', b'api-slot-1'}, res)
        expect(busy == 2, 'busy=%d' % busy)
        expect(elapsed < 1.0, 'took %.2fs: not concurrent' % elapsed)
    run_app('apps/apps.ru', t, '--name', 'api', slots=2)


@check
def control_eof_exits():
    r = Runner('apps/apps.ru', slots=2)
    try:
        r.ready()
        r.send_request(path='/slow', query='30')  # a request in flight must not keep it alive
        time.sleep(0.1)
        t0 = time.time()
        r.ctl_r.close()
        r.ctl.close()
        code = r.wait(1)
        expect(code == 0 and time.time() - t0 < 1, (code, time.time() - t0))
    finally:
        r.close()


@check
def sigterm_exits():
    for sig in (signal.SIGTERM, signal.SIGINT):
        r = Runner('apps/apps.ru')
        try:
            r.ready()
            r.send_request(path='/slow', query='30')
            time.sleep(0.1)
            t0 = time.time()
            r.proc.send_signal(sig)
            code = r.wait(1)
            expect(code == 0 and time.time() - t0 < 1, (sig, code))
        finally:
            r.close()


@check
def load_errors():
    cases = [
        (('apps/bad_syntax.ru',), 'import', '%s/bad_syntax.ru:' % APPS, '(SyntaxError)'),
        (('apps/raises.ru',), 'import', '%s/raises.ru:2: config missing: DATABASE_URL (ArgumentError)' % APPS,
         'raises.ru:2:in `'),
        (('apps/norun.ru',), 'import', 'missing run or map statement (RuntimeError)', ''),
        (('apps/needs_gem.ru',), 'import',
         '%s/needs_gem.ru:1: cannot load such file -- no_such_gem_anywhere (LoadError)' % APPS, 'needs_gem.ru:1'),
        (('apps/exits.ru',), 'import', '%s/exits.ru:2: exit (SystemExit)' % APPS, ''),
        (('apps/missing.ru',), 'import', 'No such file or directory', 'missing.ru'),
        (('apps/hello.ru', '--bogus', '1'), 'args', 'unknown argument "--bogus" (GwRack::UsageError)', ''),
        (('apps/hello.ru', '--dir', '/nonexistent-dir'), 'args', 'No such file or directory', ''),
    ]
    for args, stage, message, detail in cases:
        r = Runner(*args)
        try:
            ftype, msg = r.control_frame()
            expect(ftype == gw.LOAD_ERROR, (args, ftype, msg))
            expect(msg['stage'] == stage and message in msg['message'], (args, msg))
            expect('\n' not in msg['message'], msg)
            expect(detail in msg['detail'], msg)
            expect('gw_rack.rb' not in msg['detail'] and 'rack/builder.rb' not in msg['detail'], msg)
            expect(r.wait() == 4, 'exit status %r' % r.proc.returncode)
            expect(msg['detail'] in r.err(), 'report not on stderr')
        finally:
            r.close()


@check
def gemfile_bundler():
    """A Gemfile beside config.ru: bundler/setup runs first, as `bundle exec` would."""
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, 'config.ru'), 'w') as f:
            f.write('ok = begin; require "sinatra/base"; "sinatra visible"; rescue LoadError; "bundle only"; end\n'
                    'run ->(_e) { [200, {}, ["#{Rack.release} #{defined?(Bundler) ? "bundled" : "plain"} #{ok} '
                    '#{ENV["BUNDLE_GEMFILE"]}"]] }\n')
        with open(os.path.join(d, 'Gemfile'), 'w') as f:
            f.write("source 'https://rubygems.org'\ngem 'rack'\n")
        if RACK_LIB:
            raise Skip('RUBYLIB rack is outside any bundle')

        def t(r):
            res = r.request()
            expect(res.body.endswith(b' bundled bundle only %s/Gemfile' % d.encode()), res)
        run_app(os.path.join(d, 'config.ru'), t)
        expect(os.path.exists(os.path.join(d, 'Gemfile.lock')), 'bundler resolved offline and locked')
        # BUNDLE_GEMFILE set by the operator wins over the directory.
        sub = os.path.join(d, 'sub')
        os.mkdir(sub)
        shutil.copy(os.path.join(d, 'config.ru'), sub)
        run_app(os.path.join(sub, 'config.ru'), t, env={'BUNDLE_GEMFILE': os.path.join(d, 'Gemfile')})
        # A bundle without rack: a clear LOAD_ERROR.
        with open(os.path.join(d, 'Gemfile'), 'w') as f:
            f.write("source 'https://rubygems.org'\n")
        os.unlink(os.path.join(d, 'Gemfile.lock'))
        r = Runner(os.path.join(d, 'config.ru'))
        try:
            ftype, msg = r.control_frame()
            expect(ftype == gw.LOAD_ERROR and 'must include rack' in msg['message'], msg)
            expect(r.wait() == 4, r.proc.returncode)
        finally:
            r.close()


@check
def protocol_errors_exit_3():
    for bad in (struct.pack('<BBHI', gw.REQUEST_HEAD, 0, 0, (16 << 20) + 1),
                gw.encode_frame(gw.RESPONSE_HEAD, b''),
                gw.encode_frame(gw.REQUEST_HEAD, b'\x0a\x05ab'),
                gw.encode_frame(gw.REQUEST_HEAD, _field(4, b'A\0a\0B'))):  # env_block: odd item count
        r = Runner('apps/hello.ru')
        try:
            r.ready()
            r.slots[0].sendall(bad)
            expect(r.wait(2) == 3, 'exit status %r' % r.proc.returncode)
            expect('gw_rack: slot:' in r.err(), r.err())
        finally:
            r.close()


@check
def slot_eof_mid_request():
    def t(r):
        sock = r.slots[0]
        sock.sendall(head_message([(b'REQUEST_METHOD', b'POST'), (b'PATH_INFO', b'/echo')]))
        sock.sendall(gw.encode_frame(gw.REQUEST_BODY, b'x' * 10))
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        expect(r.proc.poll() is None, 'process must survive a closed slot')
        res = r.request(slot=1, method='POST', path='/echo', body=b'still fine')
        expect(res.body == b'still fine', res)
    run_app('apps/apps.ru', t, slots=2)


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (Linux)."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def bench(n):
    """Sequential round trips through one slot, gateway side in this process."""
    for app, path in (('apps/hello.ru', '/'), ('apps/apps.ru', '/hello'), ('apps/lint.ru', '/hello')):
        r = Runner(app)
        try:
            r.ready()
            _, head = r.head_frame(path=path)
            req = head + gw.message_frame(gw.REQUEST_END, {})
            sock, rfile = r.slots[0], r.slot_r[0]
            wall, cpu = [], []
            for rounds in (200, n, n, n):  # warm up, then the best of three
                c0, t0 = cpu_seconds(r.proc.pid), time.perf_counter()
                for _ in range(rounds):
                    sock.sendall(req)
                    while gw.read_frame(rfile)[0] != gw.RESPONSE_END:
                        pass
                wall.append((time.perf_counter() - t0) / rounds)
                cpu.append((cpu_seconds(r.proc.pid) - c0) / rounds)
            print('bench %-14s %6d requests: round trip %6.1f us (%6.0f req/s), shim CPU %5.1f us/request'
                  % (app, n, min(wall[1:]) * 1e6, 1 / min(wall[1:]), min(cpu[1:]) * 1e6))
        finally:
            r.close()


def main():
    global RACK_LIB, RACK3
    args = sys.argv[1:]
    only = args[args.index('-k') + 1] if '-k' in args else ''
    if '--rack-lib' in args:
        RACK_LIB = os.path.abspath(args[args.index('--rack-lib') + 1])
    RACK3 = rack3()
    if '--bench' in args:
        bench(int(args[args.index('--bench') + 1]))
        return 0
    failed = 0
    print('shim interpreter: %s; rack %s%s' % (RUBY, '3' if RACK3 else '2',
                                               ' from ' + RACK_LIB if RACK_LIB else ''))
    for fn in CHECKS:
        if only not in fn.__name__:
            continue
        t0 = time.time()
        try:
            fn()
            print('PASS %-36s %.2fs' % (fn.__name__, time.time() - t0))
        except Skip as e:
            print('SKIP %-36s %s' % (fn.__name__, e))
        except Exception as e:
            failed += 1
            print('FAIL %-36s %s: %s' % (fn.__name__, type(e).__name__, str(e)[:3000]))
    print('%d failed' % failed)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
