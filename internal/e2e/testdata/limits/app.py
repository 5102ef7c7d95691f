"""A WSGI app that pushes against its limits: and its neighbours, for
internal/e2e/limits_test.go. Standard library only."""
import os
import time
from urllib.parse import parse_qs


_listeners = {}


def _text(start_response, body, status='200 OK'):
    start_response(status, [('Content-Type', 'text/plain')])
    return [body.encode()]


def application(environ, start_response):
    path = environ.get('PATH_INFO', '')
    q = {k: v[0] for k, v in parse_qs(environ.get('QUERY_STRING', '')).items()}
    if path == '/pid':
        return _text(start_response, str(os.getpid()))
    if path == '/alloc':
        # Touch every page, so a cgroup charges it (RSS, not just address space).
        b = bytearray(int(q['mb']) << 20)
        b[::4096] = b'x' * len(b[::4096])
        return _text(start_response, 'allocated %d' % len(b))
    if path == '/fork':
        # Fork up to n children that wait; report how many the kernel let us.
        n, kids, refused = int(q['n']), [], ''
        for _ in range(n):
            try:
                pid = os.fork()
            except OSError as e:
                refused = 'refused: %s' % e.strerror
                break
            if pid == 0:
                time.sleep(2)
                os._exit(0)
            kids.append(pid)
        for pid in kids:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        return _text(start_response, 'forked %d %s' % (len(kids), refused))
    if path == '/spin':
        while True:  # until RLIMIT_CPU's SIGXCPU
            pass
    if path == '/read':
        try:
            with open(q['path'], 'rb') as f:
                return _text(start_response, 'read %r' % f.read(64))
        except OSError as e:
            return _text(start_response, 'denied: %s' % e.strerror)
    if path == '/list':
        try:
            return _text(start_response, 'listed %d' % len(os.listdir(q['path'])))
        except OSError as e:
            return _text(start_response, 'denied: %s' % e.strerror)
    if path == '/connect':
        import socket
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(q['path'])
            return _text(start_response, 'connected')
        except OSError as e:
            return _text(start_response, 'denied: %s' % e.strerror)
        finally:
            s.close()
    if path == '/listen':
        # A unix socket of this tenant's, in its private TMPDIR.
        import socket
        import tempfile
        name = os.path.join(tempfile.gettempdir(), 'tenant.sock')
        if name not in _listeners:
            s = socket.socket(socket.AF_UNIX)
            s.bind(name)
            os.chmod(name, 0o777)  # even open to all, the directory guards it
            s.listen(8)
            _listeners[name] = s
        return _text(start_response, name)
    if path == '/tmpdir':
        import tempfile
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b'tenant secret')
        return _text(start_response, f.name)
    if path == '/limits':
        with open('/proc/self/limits') as f:
            return _text(start_response, f.read())
    return _text(start_response, 'ok ' + os.environ.get('TENANT_SECRET', ''))
