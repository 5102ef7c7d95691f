"""WSGI app of the hostile framing suite (hostile_framing_test.go): each
path answers with a head or body that breaks HTTP framing one way."""

ROUTES = {
    '/ok': ('200 OK', [('Content-Type', 'text/plain')], [b'ok']),
    '/long': ('200 OK', [('Content-Length', '5')], [b'hello', b' world']),
    '/short': ('200 OK', [('Content-Length', '20')], [b'hello']),
    # The app frames its own body, as some do under HTTP/1.1 servers.
    '/chunked': ('200 OK', [('Transfer-Encoding', 'chunked')],
                 [b'5\r\nhello\r\n', b'6\r\n world\r\n', b'0\r\n\r\n']),
    '/early': ('103 Early Hints', [('Link', '</a.css>')], [b'']),
    '/switch': ('101 Switching Protocols', [('Upgrade', 'websocket')], [b'']),
    '/head': ('200 OK', [('Content-Length', '5')], [b'hello']),
}


def application(environ, start_response):
    if environ['PATH_INFO'] == '/bigerr':
        # One 2 MiB stderr line, then a traceback (the shim logs it).
        environ['wsgi.errors'].write('x' * (2 << 20) + '\n')
        environ['wsgi.errors'].flush()
        raise ValueError('raised after a 2 MiB stderr line')
    status, headers, body = ROUTES.get(environ['PATH_INFO'], ROUTES['/ok'])
    start_response(status, headers)
    return body
