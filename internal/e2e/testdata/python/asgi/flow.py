"""An ASGI app for internal/e2e/asgi_flow_test.go: answers bigger than the
buffers between the runner and the client, and a body left unread.

GET /stream?N   N parts of 1 MiB (part i is byte i%256), one send each
GET /sent       how many parts /stream has sent so far
GET /one?N      N MiB of b'z' in one send
POST /ignore    answers without reading the body"""

MIB = 1 << 20
sent = 0


async def answer(send, body):
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': body})


async def app(scope, receive, send):
    global sent
    if scope['type'] != 'http':
        return
    path, n = scope['path'], int(scope['query_string'] or 0)
    if path == '/stream':
        sent = 0
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'application/octet-stream')]})
        for i in range(n):
            await send({'type': 'http.response.body', 'body': bytes([i % 256]) * MIB,
                        'more_body': True})
            sent += 1
        await send({'type': 'http.response.body', 'body': b''})
    elif path == '/sent':
        await answer(send, b'%d' % sent)
    elif path == '/one':
        await answer(send, b'z' * (n * MIB))
    elif path == '/ignore':
        await answer(send, b'ignored')
