"""Plain ASGI hello and echo for bench/asgi.sh (the same two endpoints as
the yardstick's hello_asgi.py), served by gw and by gunicorn + uvicorn.

GET  any path  200 'Hello, World!' (13 bytes, text/plain)
POST /echo     reads the whole body, answers 200 with exactly 16384 bytes:
               the body length in decimal, '\\n', then 'x' padding."""

HELLO_START = {'type': 'http.response.start', 'status': 200,
               'headers': [(b'content-type', b'text/plain'), (b'content-length', b'13')]}
HELLO_BODY = {'type': 'http.response.body', 'body': b'Hello, World!'}
ECHO_SIZE = 16384
PAD = b'x' * ECHO_SIZE


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    if scope['path'] == '/echo':
        got, more = 0, True
        while more:
            msg = await receive()
            got += len(msg.get('body', b''))
            more = msg.get('more_body', False)
        head = b'%d\n' % got
        body = head + PAD[:ECHO_SIZE - len(head)]
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain'),
                                (b'content-length', b'%d' % len(body))]})
        await send({'type': 'http.response.body', 'body': body})
        return
    await send(HELLO_START)
    await send(HELLO_BODY)
