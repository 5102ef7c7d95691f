#!/usr/bin/env python3
"""Test harness for gw_wsgi.py: plays the gateway side of the bridge protocol.

    python3 harness.py [-k SUBSTRING] [-v]

For each check it spawns the shim (GW_PYTHON, default /usr/bin/python3) with
socketpairs as --control-fd/--slot-fds, sends REQUEST_HEAD/BODY/END and PING
frames, and checks the frames that come back. Test apps live in ./apps.
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
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM_DIR = os.path.dirname(HERE)
SHIM = os.path.join(SHIM_DIR, 'gw_wsgi.py')
APPS = os.path.join(HERE, 'apps')
PYTHON = os.environ.get('GW_PYTHON', '/usr/bin/python3')
sys.path.insert(0, os.path.join(SHIM_DIR, '..', 'testdata'))
from bridgeharness import env_pairs, expect, gw, head_message  # noqa: E402
import bridgeharness  # noqa: E402


class Runner(bridgeharness.Runner):
    """gw_wsgi.py under test; warnings_error makes every warning an error."""

    def __init__(self, app, *args, slots=1, warnings_error=False, cwd=None, env=None, pass_fds=()):
        cmd = [PYTHON, '-u'] + (['-W', 'error'] if warnings_error else []) + [SHIM]
        super().__init__(cmd, app, *args, slots=slots, cwd=cwd or HERE,
                         env=dict(env or {}, PYTHONDONTWRITEBYTECODE='1'), pass_fds=pass_fds)


def apps(callable_name, *args, **kw):
    return Runner('apps/apps.py', '--callable', callable_name, *args, **kw)


# --------------------------------------------------------------------------
# Checks
# --------------------------------------------------------------------------

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


@check
def hello():
    r = Runner('apps/apps.py')  # default callable "application"
    try:
        ready = r.ready()
        expect(ready['protocol'] == 2 and ready['slots'] == 1 and ready['pid'] == r.proc.pid, ready)
        expect(ready['runtime'].startswith('CPython 3.'), ready)
        res = r.request()
        expect(res.status == 200 and res.body == b'Hello, World!' and res.error == '', res)
        expect(res.headers == [('Content-Type', 'text/plain')], res)
        expect(len(res.frames) == 1, res.frames)
        res = r.request()
        expect(res.body == b'Hello, World!', res)
    finally:
        r.close()


@check
def stray_client_gone_discarded():
    """CLIENT_GONE is for ASGI runners (READY client_gone); a WSGI one
    discards a stray one and serves the next request (bridge.proto)."""
    r = Runner('apps/apps.py')
    try:
        expect(not r.ready()['client_gone'], 'WSGI READY says client_gone')
        expect(r.request().body == b'Hello, World!', 'first request')
        r.slots[0].sendall(gw.encode_frame(gw.CLIENT_GONE, b''))
        res = r.request()
        expect(res.status == 200 and res.body == b'Hello, World!', res)
    finally:
        r.close()


@check
def slot_reader_stays_small():
    """A long stream of body frames, arriving in reads that never line up
    with frame boundaries, must not grow the reader's buffer past one frame
    and one read (it once grew with the stream: 100 MiB uploads stalled)."""
    a, b = socket.socketpair()
    frame = gw.HEADER.pack(gw.REQUEST_BODY, 0, 0, 65536) + bytes(65536)
    stream = frame * 64
    def feed():
        try:
            for i in range(0, len(stream), 50000):  # odd-sized writes
                a.sendall(stream[i:i + 50000])
        except OSError:
            pass  # the reader failed and closed its end
        a.close()
    t = threading.Thread(target=feed)
    t.start()
    try:
        rd = gw.SlotReader(b)
        for _ in range(64):
            ftype, payload = rd.frame()
            expect(ftype == gw.REQUEST_BODY and len(payload) == 65536, (ftype, len(payload)))
            expect(len(rd.buf) <= 8 + 65536 + gw.READ_BUFFER, len(rd.buf))
    finally:
        b.close()
        t.join()


@check
def module_callable_form():
    r = Runner('apps:writer', '--dir', APPS, cwd='/')
    try:
        r.ready()
        res = r.request()
        expect(res.body == b'abc' and [bytes(f) for f in res.frames] == [b'a', b'b', b'c'], res)
    finally:
        r.close()


@check
def environ():
    r = apps('env', slots=2)
    try:
        r.ready()
        res = r.request(method='POST', path='/caf\xc3\xa9', query='a=1&b=%20', body=b'',
                        headers=[('HTTP_X_NAME', b'caf\xc3\xa9'), ('CONTENT_TYPE', '')],
                        scheme='https', rid='rid-42')
        env = json.loads(res.body)
        expect(env['PATH_INFO'] == '/caf\u00c3\u00a9', env['PATH_INFO'])
        expect(env['HTTP_X_NAME'] == 'caf\u00c3\u00a9', env['HTTP_X_NAME'])
        expect(env['QUERY_STRING'] == 'a=1&b=%20' and env['CONTENT_LENGTH'] == '0', env)
        expect('CONTENT_TYPE' not in env, 'empty CONTENT_TYPE must be dropped')
        expect(env['wsgi.url_scheme'] == 'https' and env['gw.request_id'] == 'rid-42', env)
        expect(env['wsgi.version'] == [1, 0] and env['wsgi.multithread'] is True, env)
        expect(env['wsgi.multiprocess'] is True and env['wsgi.run_once'] is False, env)
        expect(env['wsgi.input_terminated'] is True, env)
        expect(env['_types']['wsgi.version'] == 'tuple' and env['_types']['REQUEST_METHOD'] == 'str', env)
        for key in ('REQUEST_METHOD', 'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'SERVER_NAME',
                    'SERVER_PORT', 'SERVER_PROTOCOL', 'wsgi.input', 'wsgi.errors', 'wsgi.file_wrapper'):
            expect(key in env['_types'], key)
        res = r.request(query='')
        env = json.loads(res.body)
        expect(env['wsgi.url_scheme'] == 'http' and 'gw.request_id' not in env, env)
        expect('CONTENT_LENGTH' not in env and env['QUERY_STRING'] == '', env)
    finally:
        r.close()


@check
def env_and_env_block():
    r = apps('env')
    try:
        r.ready()
        res = r.request(path='/a\0b', headers=[('HTTP_X_EMPTY', '')])
        env = json.loads(res.body)
        expect(env['PATH_INFO'] == '/a\0b' and env['HTTP_X_EMPTY'] == '', env)
        expect(env['REQUEST_METHOD'] == 'GET' and env['SERVER_PORT'] == '8080', env)
        # Both fields at once, as a generic encoder writes them (env first).
        frame = gw.message_frame(gw.REQUEST_HEAD, {
            'env': [b'PATH_INFO', b'/x'], 'env_block': b'REQUEST_METHOD\0PUT\0QUERY_STRING\0q=1'})
        r.slots[0].sendall(frame + gw.message_frame(gw.REQUEST_END, {}))
        env = json.loads(r.read_response().body)
        expect(env['PATH_INFO'] == '/x' and env['REQUEST_METHOD'] == 'PUT'
               and env['QUERY_STRING'] == 'q=1', env)
    finally:
        r.close()


@check
def head_and_end_in_one_write():
    # REQUEST_END already buffered with the head (the gateway's bodiless
    # requests), with and without a claimed length, an aborted end, then a body.
    r = apps('aborted')
    try:
        r.ready()
        end = gw.message_frame(gw.REQUEST_END, {})
        for env, end_frame, want in (([b'REQUEST_METHOD', b'GET'], end, b'no error: 0 bytes'),
                                     ([b'CONTENT_LENGTH', b'5'], end, b'no error: 0 bytes'),
                                     ([], gw.message_frame(gw.REQUEST_END, {'aborted': True}),
                                      b'request body aborted: aborted')):
            r.slots[0].sendall(head_message(env_pairs(env)) + end_frame)
            res = r.read_response()
            expect(res.body == want, res)
        res = r.request(method='POST', body=b'0123456789')
        expect(res.body == b'no error: 10 bytes', res)
    finally:
        r.close()


@check
def validator_no_warnings():
    r = apps('validated', warnings_error=True)
    try:
        r.ready()
        res = r.request()
        expect(res.status == 200 and res.body == b'ok:' and res.error == '', (res, r.err()))
        res = r.request(method='POST', body=b'hello\nworld', headers=[('CONTENT_TYPE', 'text/plain')])
        expect(res.status == 200 and res.body == b'ok:hello\nworld' and res.error == '', (res, r.err()))
        time.sleep(0.2)
        err = r.err()
        expect('validated app read 11 bytes' in err and 'a\nb\n' in err, err)
        expect('Warning' not in err and 'Traceback' not in err, err)
    finally:
        r.close()


@check
def partial_read_then_next_request():
    r = apps('partial')
    try:
        r.ready()
        body1 = os.urandom(100000)
        res = r.request(method='POST', body=[body1[:50000], body1[50000:]])
        expect(res.body == body1[:10], res)
        res = r.request(method='POST', body=b'second body here')
        expect(res.body == b'second bod', res)
        res = r.request(method='POST', body=[b'abc', b'defghijklmnop'], cl=False)
        expect(res.body == b'abcdefghij', res)
    finally:
        r.close()


@check
def untouched_body_then_next_request():
    r = apps('untouched')
    try:
        r.ready()
        for _ in range(3):
            res = r.request(method='POST', body=os.urandom(3 << 20))
            expect(res.body == b'did not read', res)
    finally:
        r.close()


@check
def echo_10mib_sha256():
    r = apps('echo')
    try:
        r.ready()
        body = os.urandom(10 << 20)
        chunks = [body[i:i + 700001] for i in range(0, len(body), 700001)]
        t0 = time.time()
        res = r.request(method='POST', body=chunks)
        elapsed = time.time() - t0
        expect(hashlib.sha256(res.body).hexdigest() == hashlib.sha256(body).hexdigest(),
               'sha256 mismatch (%d bytes back)' % len(res.body))
        print('    10 MiB echo round trip: %.3fs' % elapsed)
    finally:
        r.close()


@check
def chunked_body():
    r = apps('digest')
    try:
        r.ready()
        parts = [os.urandom(n) for n in (1, 100000, 0, 70000, 3)]
        data = b''.join(parts)
        res = r.request(method='POST', body=parts, cl=False)
        expect(res.body == ('%s %d' % (hashlib.sha256(data).hexdigest(), len(data))).encode(), res)
        res = r.request(method='POST', body=b'0123456789' * 3, extra_env=['CONTENT_LENGTH', '7'])
        expect(res.body.endswith(b' 7'), 'CONTENT_LENGTH must cap the body: %r' % res)
    finally:
        r.close()


@check
def readline_and_iteration():
    r = apps('lines')
    try:
        r.ready()
        res = r.request(method='POST', body=[b'first line\nsec', b'ond\nthird\n', b'fourth\nlast'], cl=False)
        got = json.loads(res.body)
        expect(got == ['first line\n', 'sec', 'ond\n', 'third\n', 'fourth\n', 'last'], got)
    finally:
        r.close()


@check
def write_callable_and_generator_frames():
    r = apps('writer')
    try:
        r.ready()
        res = r.request()
        expect([bytes(f) for f in res.frames] == [b'a', b'b', b'c'], res)
    finally:
        r.close()
    r = apps('gen3')
    try:
        r.ready()
        res = r.request()
        expect([bytes(f) for f in res.frames] == [b'one', b'two', b'three'], res.frames)
    finally:
        r.close()


@check
def lazy_start_response():
    r = apps('lazy')
    try:
        r.ready()
        res = r.request()
        expect(res.status == 201 and res.body == b'lazy', res)
    finally:
        r.close()


@check
def head_not_iterated():
    """HEAD: no body frames, and the body is closed but not iterated (a
    Rack::Lint-like body raises when a HEAD body is); write() sends none
    either, and a lazy app is iterated just as far as start_response."""
    r = apps('dispatch')
    try:
        r.ready()
        res = r.request(method='HEAD', path='/head_body')
        expect(res.status == 200 and res.body == b'' and res.error == '', res)
        expect(('Content-Length', '4') in res.headers, res)
        res = r.request(method='HEAD', path='/head_write')
        expect(res.status == 200 and res.body == b'' and res.error == '', res)
        res = r.request(method='HEAD', path='/lazy')
        expect(res.status == 201 and res.body == b'' and res.error == '', res)
        expect(r.request(path='/iterated').body == b'close', 'HEAD body was iterated')
        expect(r.request(path='/head_body').body == b'body', 'GET')
    finally:
        r.close()


@check
def app_errors():
    cases = {
        'boom': (None, 'ValueError: boom before start_response'),
        'boom_late': (200, 'RuntimeError: late boom'),
        'nonbytes': (None, 'TypeError: response body chunks must be bytes, not str'),
        'no_start': (None, 'AssertionError: the application returned without calling start_response()'),
        'bad_header': (None, 'ValueError: invalid response header'),
        'exc_after_head': (200, 'KeyError'),
        'closing': (200, 'RuntimeError: iteration failed'),
    }
    for name, (status, error) in cases.items():
        r = apps(name)
        try:
            r.ready()
            res = r.request()
            expect(res.status == status and res.error.startswith(error), (name, res))
            res = r.request()  # the slot still works
            expect(res.end is not None, name)
            time.sleep(0.05)
            expect('Traceback' in r.err(), (name, r.err()))
        finally:
            r.close()


@check
def exc_info_replaces_headers():
    r = apps('exc_replace')
    try:
        r.ready()
        res = r.request()
        expect(res.status == 503 and ('Retry-After', '1') in res.headers and res.body == b'replaced', res)
    finally:
        r.close()


@check
def close_called():
    # close() must run once per request, even when iteration raises.
    r = apps('dispatch')
    try:
        r.ready()
        for _ in range(3):
            expect(r.request(path='/closing').error.startswith('RuntimeError'), 'closing')
        res = r.request(path='/close_count')
        expect(res.body == b'3', res)
    finally:
        r.close()


@check
def stale_write_callable():
    r = apps('dispatch')
    try:
        r.ready()
        expect(r.request(path='/save_write').body == b'saved', 'save_write')
        res = r.request(path='/stale_write')
        expect(res.status is None and res.error.startswith('AssertionError: write() called after'), res)
        expect(r.request(path='/hello').body == b'Hello, World!', 'next request')
    finally:
        r.close()


@check
def big_chunk_split_and_many_chunks():
    r = apps('big')
    try:
        r.ready()
        res = r.request()
        expect([len(f) for f in res.frames] == [1 << 20] * 3 + [5], [len(f) for f in res.frames])
    finally:
        r.close()
    r = apps('many')
    try:
        r.ready()
        res = r.request()
        expect(res.body == b''.join(b'%d,' % i for i in range(1000)), res)
    finally:
        r.close()


@check
def file_wrapper():
    r = apps('filewrap')
    try:
        r.ready()
        res = r.request()
        expect(res.body == (bytes(range(256)) * 4)[100:700], (len(res.body), res))
    finally:
        r.close()


@check
def app_threads():
    r = apps('threads')
    try:
        r.ready()
        expect(r.request().body == b'[0, 1, 2, 3]', 'threads')
    finally:
        r.close()


@check
def aborted_body():
    r = apps('aborted')
    try:
        r.ready()
        res = r.request(method='POST', body=b'0123456789', abort='client went away', cl=False,
                        extra_env=['CONTENT_LENGTH', '100'])
        expect(res.body == b'request body aborted: client went away', res)
        res = r.request(method='POST', body=b'0123456789', cl=False, abort='body limit')
        expect(res.body == b'request body aborted: body limit', res)
        res = r.request(method='POST', body=b'0123456789')
        expect(res.body == b'no error: 10 bytes', res)
        # Every byte of CONTENT_LENGTH arrived: the app never reaches the abort.
        res = r.request(method='POST', body=b'0123456789', abort='late')
        expect(res.body == b'no error: 10 bytes', res)
    finally:
        r.close()


@check
def ping_pong_counters():
    r = apps('hello')
    try:
        r.ready()
        expect(r.ping(1) == {'seq': 1, 'requests': 0, 'busy': 0}, 'first pong')
        for _ in range(5):
            r.request()
        deadline = time.time() + 2
        while r.ping(7)['requests'] != 5 and time.time() < deadline:
            time.sleep(0.01)
        pong = r.ping(1 << 63)
        expect(pong == {'seq': 1 << 63, 'requests': 5, 'busy': 0}, pong)
    finally:
        r.close()


@check
def asgi_eager_start():
    """gw_asgi serves a request that came whole in one read inside the slot
    reader's callback (Slot.eager), and hands one that suspends there to
    the slot's task, which finishes it: both as the slot's task (asyncio's
    current_task, what anyio and Starlette look up), with the slot's
    logvars, counted; the suspended one is in SIGUSR1's task dump (the
    slowlog gw asks for at a request's deadline)."""
    r = Runner('apps/asgi_eager.py', '--callable', 'app', '--interface', 'asgi')

    def whole(query):  # head and end in one write, as gw sends a request
        _, head = r.head_frame(query=query)
        r.slots[0].sendall(head + gw.REQUEST_END_EMPTY)

    def answer(want_body, want_logvar):
        res = r.read_response()
        expect(res.status == 200 and res.body == want_body and res.error == '', res)
        expect(res.end['logvars'] == [b'q', want_logvar], res.end)
    try:
        r.ready()
        whole('a')
        answer(b'start_eager=True end_eager=True task=slot-0 logvar=a', b'a')
        whole('sleep=1')
        wait_for('busy slot', lambda: r.ping(1)['busy'] == 1)
        os.kill(r.proc.pid, signal.SIGUSR1)
        wait_for('task dump', lambda: 'Task slot-0' in r.err() and 'in app' in r.err())
        expect('asyncio.sleep(float' in r.err(), r.err())
        answer(b'start_eager=True end_eager=False task=slot-0 logvar=sleep=1', b'sleep=1')
        # Head and part of the body: not a whole request, so the task's own
        # path; the rest of the body after the answer, as a client may.
        _, head = r.head_frame(method='POST', query='b', body=b'xy')
        r.slots[0].sendall(head + gw.encode_frame(gw.REQUEST_BODY, b'x'))
        answer(b'start_eager=False end_eager=False task=slot-0 logvar=b', b'b')
        r.slots[0].sendall(gw.encode_frame(gw.REQUEST_BODY, b'y') + gw.REQUEST_END_EMPTY)
        # Counted in the step that takes the task back to its wait: eager again.
        wait_for('third request counted', lambda: r.ping(4)['requests'] == 3)
        whole('c')
        answer(b'start_eager=True end_eager=True task=slot-0 logvar=c', b'c')
        pong = r.ping(3)
        expect(pong['requests'] == 4 and pong['busy'] == 0, pong)
    finally:
        r.close()


@check
def two_slots_concurrent():
    r = apps('slow', '--name', 'api', slots=2)
    try:
        r.ready()
        t0 = time.time()
        ts = [r.send_request(slot=i, query='0.6') for i in range(2)]
        time.sleep(0.3)
        busy = r.ping(5)['busy']
        res = [r.read_response(i) for i in range(2)]
        elapsed = time.time() - t0
        for t in ts:
            t.join()
        expect(all(x.status == 200 for x in res), res)
        expect({x.body for x in res} == {b'api-slot-0', b'api-slot-1'}, res)
        expect(busy == 2, 'busy=%d' % busy)
        expect(elapsed < 1.0, 'took %.2fs: not concurrent' % elapsed)
    finally:
        r.close()


@check
def control_eof_exits():
    r = apps('slow', slots=2)
    try:
        r.ready()
        r.send_request(query='30')  # a request in flight must not keep it alive
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
    r = apps('hello')
    try:
        r.ready()
        t0 = time.time()
        r.proc.send_signal(signal.SIGTERM)
        code = r.wait(1)
        expect(code == 0 and time.time() - t0 < 1, code)
    finally:
        r.close()


@check
def load_errors():
    cases = [
        (('apps/bad_syntax.py',), 'import', 'SyntaxError: ', 'bad_syntax.py'),
        (('apps/raises.py',), 'import', 'RuntimeError: config missing: DATABASE_URL',
         'Traceback (most recent call last):\n  File "%s/raises.py", line 2' % APPS),
        (('apps/apps.py', '--callable', 'nope'), 'callable', 'AttributeError: no WSGI or ASGI callable', 'nope'),
        (('apps/apps.py', '--callable', 'TEXT'), 'callable', 'TypeError: TEXT', 'TEXT'),
        (('no_such_module:app',), 'import', "ModuleNotFoundError: No module named 'no_such_module'", ''),
        (('apps/missing.py',), 'import', 'FileNotFoundError', 'missing.py'),
        (('apps/apps.py', '--bogus', '1'), 'args', "UsageError: unknown argument '--bogus'", ''),
        (('apps/apps.py', '--dir', '/nonexistent-dir'), 'args', 'FileNotFoundError', ''),
    ]
    for args, stage, message, detail in cases:
        r = Runner(*args)
        try:
            ftype, msg = r.control_frame()
            expect(ftype == gw.LOAD_ERROR, (args, ftype, msg))
            expect(msg['stage'] == stage and msg['message'].startswith(message), (args, msg))
            expect('\n' not in msg['message'], msg)
            expect(detail in msg['detail'] and msg['message'].split(':')[0] in msg['detail'], msg)
            expect('gw_wsgi.py' not in msg['detail'] and 'importlib' not in msg['detail'], msg)
            expect(r.wait() == 4, 'exit status %r' % r.proc.returncode)
            expect(msg['detail'] in r.err(), 'traceback not on stderr')
        finally:
            r.close()


@check
def protocol_errors_exit_3():
    for bad in (struct.pack('<BBHI', gw.REQUEST_HEAD, 0, 0, (16 << 20) + 1),
                gw.encode_frame(gw.RESPONSE_HEAD, b''),
                gw.encode_frame(gw.REQUEST_HEAD, b'\x0a\x05ab'),
                gw.message_frame(gw.REQUEST_HEAD, {'env_block': b'A\0a\0B'})):
        r = apps('hello')
        try:
            r.ready()
            r.slots[0].sendall(bad)
            expect(r.wait(2) == 3, 'exit status %r' % r.proc.returncode)
            expect('gw_wsgi: slot:' in r.err(), r.err())
        finally:
            r.close()


@check
def slot_eof_mid_request():
    r = apps('echo', slots=2)
    try:
        r.ready()
        sock = r.slots[0]
        sock.sendall(gw.message_frame(gw.REQUEST_HEAD, {'env': [b'REQUEST_METHOD', b'POST']}))
        sock.sendall(gw.encode_frame(gw.REQUEST_BODY, b'x' * 10))
        sock.shutdown(socket.SHUT_WR)
        time.sleep(0.3)
        expect(r.proc.poll() is None, 'process must survive a closed slot')
        res = r.request(slot=1, method='POST', body=b'still fine')
        expect(res.body == b'still fine', res)
    finally:
        r.close()


@check
def flask_app():
    try:
        subprocess.run([PYTHON, '-c', 'import flask'], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        print('    (skipped: flask is not installed for %s)' % PYTHON)
        return
    r = Runner('apps/flask_app.py', slots=2)
    try:
        r.ready()
        res = r.request(headers=[('HTTP_HOST', 'example.com')])
        expect(res.status == 200 and res.body == b'flask ok', res)
        payload = json.dumps({'a': [1, 2], 'caf\u00e9': True}).encode()
        res = r.request(method='POST', path='/json', body=payload,
                        headers=[('CONTENT_TYPE', 'application/json')])
        expect(res.status == 200 and json.loads(res.body) == {
            'got': {'a': [1, 2], 'caf\u00e9': True}, 'length': len(payload)}, res)
        res = r.request(method='POST', path='/json', body=[payload[:5], payload[5:]], cl=False,
                        headers=[('CONTENT_TYPE', 'application/json')])
        expect(res.status == 200 and json.loads(res.body)['got'] == {'a': [1, 2], 'caf\u00e9': True}, res)
        form = (b'--XX\r\nContent-Disposition: form-data; name="f"\r\n\r\nv\r\n'
                b'--XX\r\nContent-Disposition: form-data; name="up"; filename="a.txt"\r\n'
                b'Content-Type: text/plain\r\n\r\nfile body\r\n--XX--\r\n')
        res = r.request(method='POST', path='/form', body=form,
                        headers=[('CONTENT_TYPE', 'multipart/form-data; boundary=XX')])
        expect(json.loads(res.body) == {'form': {'f': 'v'}, 'files': {'up': 'file body'}}, res)
        res = r.request(path='/stream')
        expect(res.body == b'0\n1\n2\n', res)
        res = r.request(path='/fail')
        expect(res.status == 500 and res.error == '', res)
        res = r.request(path='/missing')
        expect(res.status == 404, res)
    finally:
        r.close()


def wait_for(what, cond, secs=10):
    deadline = time.time() + secs
    while not cond():
        if time.time() > deadline:
            raise AssertionError('%s: not within %ss' % (what, secs))
        time.sleep(0.05)


@check
def timer_token():
    """Two runners numbered 1 on one lock file (a replacement beside the
    runner it replaces): only the token's holder ticks; the other takes
    over once it is gone. The first holder finds the previous holder's
    state (the minute before this one) and fires this minute's cron at
    once, which the second does not repeat."""
    import tempfile
    fd = os.memfd_create('gw-uwsgi-lock')
    log = tempfile.NamedTemporaryFile(prefix='gw-timers-', delete=False).name
    minute = int(time.time() // 60)
    os.pwrite(fd, struct.pack('<4sqI', b'gwT1', minute - 1, 0), 0)

    def events():
        with open(log) as f:
            return [line.split() for line in f]

    def runner():
        r = Runner('apps/uwsgi_timers.py', '--worker-id', '1', '--lock-fd', str(fd),
                   env={'LOG': log}, pass_fds=[fd])
        r.ready()
        return r
    r1 = runner()
    r2 = None
    try:
        pid1 = str(r1.proc.pid)
        wait_for('r1 ticks and fires the cron minute left over', lambda: (
            sum(e[0] == 'tick' for e in events()) >= 2 and any(e[0] == 'cron' for e in events())))
        r2 = runner()
        time.sleep(1.5)
        expect(all(e[1] == pid1 for e in events()), 'r2 fired while r1 holds the token: %r' % events())
        r1.close()
        cut = len(events())
        wait_for('r2 ticks once r1 is gone', lambda: any(e[0] == 'tick' for e in events()[cut:]))
        pid2 = str(r2.proc.pid)
        ev = events()
        expect(all(e[1] == pid2 for e in ev[cut:]), 'r1 fired after it exited: %r' % ev)
        minutes = [e[2] for e in ev if e[0] == 'cron']
        expect(len(minutes) == len(set(minutes)) and minutes[0] in (str(minute), str(minute + 1)),
               'cron minutes %r, want %d once (or the next, if the minute turned)' % (minutes, minute))
    finally:
        for r in (r1, r2):
            if r is not None:
                r.close()
        os.close(fd)
        os.unlink(log)


@check
def timer_token_not_runner_1():
    """A runner not numbered 1 (runner 1 was retired by a scale-down) takes
    the free token, but only after leaving runner 1 TOKEN_DEFER."""
    import tempfile
    fd = os.memfd_create('gw-uwsgi-lock')
    log = tempfile.NamedTemporaryFile(prefix='gw-timers-', delete=False).name
    r = Runner('apps/uwsgi_timers.py', '--worker-id', '2', '--lock-fd', str(fd),
               env={'LOG': log}, pass_fds=[fd])
    try:
        r.ready()
        t0 = time.time()
        wait_for('runner 2 ticks', lambda: os.path.getsize(log) > 0, secs=30)
        waited = time.time() - t0
        expect(waited > 5, 'runner 2 ticked %.1f s after READY: it did not leave runner 1 its turn' % waited)
    finally:
        r.close()
        os.close(fd)
        os.unlink(log)


def _ws_frame(op, payload, mask=b'\x01\x02\x03\x04'):
    """A masked client frame (FIN set), payload under 126 bytes."""
    return bytes((0x80 | op, 0x80 | len(payload))) + mask + bytes(
        b ^ mask[i % 4] for i, b in enumerate(payload))


def _ws_handed_runner():
    """An ASGI runner with a session channel; returns (runner, gw's end)."""
    chan, child = socket.socketpair()
    r = Runner('apps/asgi_ws.py', '--callable', 'app', '--interface', 'asgi',
               '--session-fd', str(child.fileno()), pass_fds=[child.fileno()])
    child.close()
    chan.settimeout(20)
    return r, chan


def _ws_offer(r, chan, sid, path):
    """A client TCP connection whose server end goes to the runner as gw
    sends it (RAW_CONNECT, then one byte with the socket), then WS_CONNECT
    naming it on slot 0. Returns the client's socket."""
    lst = socket.create_server(('127.0.0.1', 0))
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    lst.close()
    chan.sendall(gw.HEADER.pack(gw.RAW_CONNECT, 0, 0, 4) + struct.pack('<I', sid))
    socket.send_fds(chan, [b'\0'], [srv.fileno()])
    srv.close()  # the runner has its copy (gw keeps its own: not needed here)
    env = [b'REQUEST_METHOD', b'GET', b'PATH_INFO', path.encode(), b'REQUEST_URI', path.encode(),
           b'SERVER_PROTOCOL', b'HTTP/1.1', b'HTTP_SEC_WEBSOCKET_KEY', b'dGhlIHNhbXBsZSBub25jZQ==',
           b'HTTP_SEC_WEBSOCKET_VERSION', b'13', b'HTTP_SEC_WEBSOCKET_PROTOCOL', b'echo']
    r.slots[0].sendall(gw.message_frame(gw.WS_CONNECT, {
        'env_block': b'\0'.join(env), 'url_scheme': 'http', 'websocket_session': sid,
        'raw_connection': sid, 'ws_max_message': 64, 'ws_ping_ms': 0}))
    cli.settimeout(10)
    return cli


@check
def asgi_ws_handed():
    """The handover (docs/design/websocket.md "Handover for ASGI"): READY
    says ws_socket; given the client's socket, the runner writes the 101
    (accept key, subprotocol, the app's header but not its Connection),
    answers WS_ACCEPT handed, echoes masked frames, pongs, refuses an
    over-limit message with 1009, and says RAW_CLOSED with the counts."""
    r, chan = _ws_handed_runner()
    try:
        ready = r.ready()
        expect(ready['websocket'] and ready['ws_socket'], 'READY %r: want websocket and ws_socket' % ready)
        cli = _ws_offer(r, chan, 7, '/echo')
        ftype, payload = gw.read_frame(r.slot_r[0])
        acc = gw.decode_message(ftype, payload) if ftype == gw.WS_ACCEPT else None
        expect(acc == {'subprotocol': 'echo', 'headers': [], 'handed': True}, 'slot: %d %r' % (ftype, payload))
        rf = cli.makefile('rb')
        head = b''
        while not head.endswith(b'\r\n\r\n'):
            head += rf.read(1)
        lines = head.decode('latin-1').split('\r\n')
        expect(lines[0] == 'HTTP/1.1 101 Switching Protocols', head)
        for want in ('Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'Sec-WebSocket-Protocol: echo',
                     'x-app: yes', 'Upgrade: websocket', 'Connection: Upgrade'):
            expect(want in lines, '101 lacks %r: %r' % (want, head))
        expect('connection: dropped' not in lines, "the app's Connection header went out: %r" % head)
        cli.sendall(_ws_frame(1, b'hello') + _ws_frame(9, b'pp') + _ws_frame(2, b'\x00\xff'))
        got = rf.read(15)  # the pong goes out at once, maybe before the app's echo
        expect(got in (b'\x81\x05hello\x8a\x02pp\x82\x02\x00\xff', b'\x8a\x02pp\x81\x05hello\x82\x02\x00\xff'),
               'echoes and pong: %r' % got)
        cli.sendall(_ws_frame(2, bytes(65)))  # ws_max_message is 64
        got = rf.read(2)
        got += rf.read(got[1])
        expect(got[0] == 0x88 and got[2:4] == struct.pack('!H', 1009), 'over the limit: %r' % got)
        rf.close()  # a makefile() keeps the fd open until it is closed too
        cli.close()  # the client's EOF: the runner closes at once (not WS_CLOSE_WAIT later)
        b = b''
        while len(b) < 28:
            chunk = chan.recv(28 - len(b))
            expect(chunk, 'session channel ended before RAW_CLOSED')
            b += chunk
        expect(b == gw.RAW_CLOSED_COUNTS.pack(gw.RAW_CLOSED, 0, 0, 20, 7, 2, 2),
               'RAW_CLOSED %r, want id 7, 2 messages in, 2 out' % b)
    finally:
        chan.close()
        r.close()


@check
def asgi_ws_handed_refused():
    """A refusal on an offered socket is answered on the slot (gw writes
    it): 403, nothing on the socket, which the runner closed (its copy)."""
    r, chan = _ws_handed_runner()
    try:
        r.ready()
        cli = _ws_offer(r, chan, 9, '/deny')
        res = r.read_response(0)
        expect(res.status == 403, 'refusal: %r' % res)
        cli.settimeout(0.5)
        try:
            data = cli.recv(10)
        except socket.timeout:
            data = None
        expect(data == b'', 'the client socket: %r, want EOF (the only copy was the runner\'s)' % data)
    finally:
        chan.close()
        r.close()


def main():
    args = sys.argv[1:]
    only = args[args.index('-k') + 1] if '-k' in args else ''
    failed = 0
    print('shim interpreter: %s' % PYTHON)
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
