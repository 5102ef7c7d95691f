"""WSGI test apps for gw_wsgi.py (pick one with --callable NAME); see ../harness.py."""
import hashlib
import json
import sys
import tempfile
import threading
import time
from wsgiref.validate import validator

TEXT = [('Content-Type', 'text/plain')]


def hello(environ, start_response):
    start_response('200 OK', TEXT)
    return [b'Hello, World!']


application = hello


def env(environ, start_response):
    """The environ as JSON: str values, plus the type name of every value."""
    out = {k: v for k, v in environ.items() if isinstance(v, (str, bool, tuple))}
    out['_types'] = {k: type(v).__name__ for k, v in environ.items()}
    body = json.dumps(out).encode()
    start_response('200 OK', [('Content-Type', 'application/json'),
                              ('Content-Length', str(len(body)))])
    return [body]


def _simple(environ, start_response):
    inp = environ['wsgi.input']
    length = int(environ.get('CONTENT_LENGTH') or 0)
    first = inp.readline(4) if length else b''
    rest = inp.read(length - len(first)) if length else b''
    after = inp.read(10)  # past CONTENT_LENGTH: must be b''
    environ['wsgi.errors'].write('validated app read %d bytes\n' % (len(first) + len(rest)))
    environ['wsgi.errors'].writelines(['a\n', 'b\n'])
    environ['wsgi.errors'].flush()
    body = b'ok:' + first + rest + after
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', str(len(body)))])
    return iter([body[:3], body[3:]])


validated = validator(_simple)


def partial(environ, start_response):
    data = environ['wsgi.input'].read(10)
    start_response('200 OK', TEXT)
    return [data]


def untouched(environ, start_response):
    start_response('200 OK', TEXT)
    return [b'did not read']


def echo(environ, start_response):
    """Streams the body back as it arrives, 64 KiB at a time."""
    inp = environ['wsgi.input']
    start_response('200 OK', [('Content-Type', 'application/octet-stream')])

    def chunks():
        while True:
            data = inp.read(65536)
            if not data:
                return
            yield data
    return chunks()


def digest(environ, start_response):
    """read() to the end, then sha256 and length (chunked bodies too)."""
    data = environ['wsgi.input'].read()
    start_response('200 OK', TEXT)
    return [('%s %d' % (hashlib.sha256(data).hexdigest(), len(data))).encode()]


def lines(environ, start_response):
    inp = environ['wsgi.input']
    first = inp.readline()
    limited = inp.readline(3)
    two = inp.readlines(1)
    rest = list(inp)
    body = json.dumps([x.decode('latin-1') for x in [first, limited] + two + rest]).encode()
    start_response('200 OK', [('Content-Type', 'application/json')])
    return [body]


def writer(environ, start_response):
    write = start_response('200 OK', TEXT)
    write(b'a')
    write(b'b')
    return [b'c']


def gen3(environ, start_response):
    start_response('200 OK', TEXT)
    yield b'one'
    yield b''
    yield b'two'
    yield b'three'


def lazy(environ, start_response):
    yield b''
    start_response('201 Created', TEXT)
    yield b'lazy'


def boom(environ, start_response):
    raise ValueError('boom before start_response')


def boom_late(environ, start_response):
    start_response('200 OK', TEXT)
    yield b'first'
    raise RuntimeError('late boom')


def nonbytes(environ, start_response):
    start_response('200 OK', TEXT)
    return ['a str']


def no_start(environ, start_response):
    return []


def bad_header(environ, start_response):
    start_response('200 OK', [('X-Bad', 'a\r\nInjected: 1')])
    return [b'x']


def exc_replace(environ, start_response):
    start_response('200 OK', TEXT)
    try:
        raise KeyError('x')
    except KeyError:
        start_response('503 Service Unavailable', [('Content-Type', 'text/plain'),
                                                   ('Retry-After', '1')], sys.exc_info())
    return [b'replaced']


def exc_after_head(environ, start_response):
    write = start_response('200 OK', TEXT)
    write(b'partial')
    try:
        raise KeyError('too late')
    except KeyError:
        start_response('500 Oops', TEXT, sys.exc_info())
    return [b'never']


def slow(environ, start_response):
    time.sleep(float(environ.get('QUERY_STRING') or 0.5))
    start_response('200 OK', TEXT)
    return [threading.current_thread().name.encode()]


def aborted(environ, start_response):
    try:
        data = environ['wsgi.input'].read()
        result = b'no error: %d bytes' % len(data)
    except OSError as e:
        result = str(e).encode()
    start_response('200 OK', TEXT)
    return [result]


CLOSED = []


class _Closing:
    def __iter__(self):
        yield b'x'
        raise RuntimeError('iteration failed')

    def close(self):
        CLOSED.append(1)


def closing(environ, start_response):
    start_response('200 OK', TEXT)
    return _Closing()


def close_count(environ, start_response):
    start_response('200 OK', TEXT)
    return [str(len(CLOSED)).encode()]


def big(environ, start_response):
    start_response('200 OK', TEXT)
    return [b'z' * (3 * 1024 * 1024 + 5)]


def many(environ, start_response):
    start_response('200 OK', TEXT)
    return [b'%d,' % i for i in range(1000)]


def filewrap(environ, start_response):
    f = tempfile.TemporaryFile()
    f.write(bytes(range(256)) * 4)
    f.seek(100)
    start_response('200 OK', [('Content-Type', 'application/octet-stream'),
                              ('Content-Length', '600')])
    return environ['wsgi.file_wrapper'](f, 64)


def threads(environ, start_response):
    out = []
    ts = [threading.Thread(target=out.append, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    start_response('200 OK', TEXT)
    return [str(sorted(out)).encode()]


SAVED_WRITE = []


def save_write(environ, start_response):
    SAVED_WRITE.append(start_response('200 OK', TEXT))
    return [b'saved']


def stale_write(environ, start_response):
    start_response('200 OK', TEXT)
    SAVED_WRITE[-1](b'stale')  # the previous request's write(): must raise
    return [b'not reached']


ITERATED = []


class _Counted:
    """A body that records being iterated and closed."""

    def __iter__(self):
        ITERATED.append('iter')
        yield b'body'

    def close(self):
        ITERATED.append('close')


def head_body(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain'), ('Content-Length', '4')])
    return _Counted()


def head_write(environ, start_response):
    start_response('200 OK', [('Content-Length', '5')])(b'write')
    return [b'']


def iterated(environ, start_response):
    start_response('200 OK', TEXT)
    return [','.join(ITERATED).encode()]


def dispatch(environ, start_response):
    """Routes /NAME to the app NAME, so several apps share one process."""
    return globals()[environ['PATH_INFO'][1:]](environ, start_response)
