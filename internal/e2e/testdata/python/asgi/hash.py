"""ASGI: POST answers "<bytes read> <sha256 hex>" of the body (the language
suites' /hash contract), for the spliced-body test."""
import hashlib


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    h, n, more = hashlib.sha256(), 0, True
    while more:
        msg = await receive()
        body = msg.get('body', b'')
        h.update(body)
        n += len(body)
        more = msg.get('more_body', False)
    out = b'%d %s' % (n, h.hexdigest().encode())
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain'), (b'content-length', b'%d' % len(out))]})
    await send({'type': 'http.response.body', 'body': out})
