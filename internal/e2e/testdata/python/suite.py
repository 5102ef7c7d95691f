"""Test app for gw's Python runner: one callable, wrapped in wsgiref's
PEP 3333 validator, with an endpoint per behaviour the tests check."""
import hashlib
import json
import os
import threading
import time
from wsgiref.validate import validator

_started = {}


def _bg():
    _started["import_thread"] = threading.current_thread().name


threading.Thread(target=_bg, name="import-thread").start()


def raw(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/env" or path.startswith("/env/") or path.endswith("/env"):
        env = {k: v for k, v in environ.items() if isinstance(v, str)}
        env["wsgi.version"] = list(environ["wsgi.version"])
        for k in ("wsgi.multithread", "wsgi.multiprocess", "wsgi.run_once"):
            env[k] = environ[k]
        body = json.dumps(env).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/hash":
        # sha256 of the body, read in odd-sized pieces through read(n)
        h, n = hashlib.sha256(), 0
        inp = environ["wsgi.input"]
        while True:
            chunk = inp.read(65537)
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [("%d %s" % (n, h.hexdigest())).encode()]
    if path == "/echo":
        # the body back: bodies both ways in one request (read(n), as
        # wsgiref's validator wants)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or "0"))
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/lines":
        inp = environ["wsgi.input"]
        first = inp.readline()
        rest = inp.readlines()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d|%s|%d" % (len(rest) + 1, first.strip(), sum(len(l) for l in rest))]
    if path == "/iter":
        lines = [line for line in environ["wsgi.input"]]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % len(lines)]
    if path == "/download":
        size = int(environ.get("QUERY_STRING") or "0")
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(size))])
        return _pattern(size)
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"via write; ")
        return [b"then iterable"]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _slow_chunks()
    if path == "/unread":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ignored your body"]
    if path == "/sleep":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"slept"]
    if path == "/pid":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(os.getpid()).encode()]
    if path == "/threads":
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("ran", True))
        t.start()
        t.join(5)
        body = json.dumps({"request_thread": out.get("ran", False),
                           "import_thread": _started.get("import_thread")}).encode()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]
    if path == "/log":
        environ["wsgi.errors"].write("hello from wsgi.errors\n")
        environ["wsgi.errors"].flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"logged"]
    if path == "/error":
        raise RuntimeError("boom from the app")
    if path == "/cookies":
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
        return [b"two cookies"]
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"no such test endpoint"]


def _pattern(size):
    block = bytes(range(256)) * 256  # 64 KiB
    sent = 0
    while sent < size:
        n = min(len(block), size - sent)
        yield block[:n]
        sent += n


def _slow_chunks():
    for i in range(3):
        yield b"chunk %d\n" % i
        time.sleep(0.3)


application = validator(raw)
