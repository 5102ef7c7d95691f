"""FastAPI app for the WebSocket tests (internal/e2e/websocket_test.go)."""
import os

from fastapi import FastAPI, WebSocket
from fastapi.responses import PlainTextResponse

app = FastAPI()
LOG = os.environ.get('LOG')


def log(line):
    if LOG:
        with open(LOG, 'a') as f:
            f.write(line + '\n')


@app.get('/http')
def plain():
    return PlainTextResponse('ok %d' % os.getpid())


@app.websocket('/echo')
async def echo(ws: WebSocket):
    offered = ws.scope.get('subprotocols') or []
    await ws.accept(subprotocol='echo.v1' if 'echo.v1' in offered else None)
    while True:
        msg = await ws.receive()
        if msg['type'] == 'websocket.disconnect':
            log('disconnect %s %s' % (ws.scope['path'], msg.get('code')))
            return
        if msg.get('text') is not None:
            await ws.send_text(msg['text'])
        else:
            await ws.send_bytes(msg['bytes'])


@app.websocket('/pid')
async def pid(ws: WebSocket):
    # Says which runner holds the session, then waits for the client to go.
    await ws.accept()
    await ws.send_text(str(os.getpid()))
    while (await ws.receive())['type'] != 'websocket.disconnect':
        pass


@app.websocket('/deny')
async def deny(ws: WebSocket):
    await ws.close()


@app.websocket('/bye')
async def bye(ws: WebSocket):
    await ws.accept()
    await ws.send_text('bye')
    await ws.close(code=4000, reason='done')


@app.websocket('/flood')
async def flood(ws: WebSocket):
    # "N SIZE": N binary messages of SIZE bytes, as fast as gw takes them.
    await ws.accept()
    n, size = map(int, (await ws.receive_text()).split())
    data = b'f' * size
    try:
        for _ in range(n):
            await ws.send_bytes(data)
    except Exception as e:  # gw closed the session (1013): send fails
        log('flood ended: %s' % type(e).__name__)
    while (await ws.receive())['type'] != 'websocket.disconnect':
        pass


class Refusals:
    """Handshakes refused below FastAPI (Starlette 0.26 has no denial
    response): /denybody answers 401 with a body (the ASGI
    websocket.http.response extension), /boom fails before accepting."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope['type'] == 'websocket' and scope['path'] == '/denybody':
            await receive()  # websocket.connect
            await send({'type': 'websocket.http.response.start', 'status': 401,
                        'headers': [(b'content-type', b'text/plain'), (b'x-why', b'denied')]})
            await send({'type': 'websocket.http.response.body', 'body': b'not ', 'more_body': True})
            await send({'type': 'websocket.http.response.body', 'body': b'you'})
            return
        if scope['type'] == 'websocket' and scope['path'] == '/boom':
            raise RuntimeError('boom before accept')
        await self.app(scope, receive, send)


app.add_middleware(Refusals)
