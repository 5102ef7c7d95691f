"""An ASGI app that allocates past its limits.memory, for limits_test.go."""
import os


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    body = str(os.getpid()).encode()
    if scope['path'] == '/alloc':
        body = b'%d' % len(bytearray(512 << 20))
    await send({'type': 'http.response.start', 'status': 200, 'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': body})
