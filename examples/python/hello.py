"""The smallest WSGI app: `gw run examples/python/hello.py`."""


def application(environ, start_response):
    body = b"Hello from gw! You asked for %s\n" % environ["PATH_INFO"].encode("latin-1")
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
