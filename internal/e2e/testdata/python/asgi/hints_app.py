"""Early hints and client-gone for TestASGIClientGone and TestEarlyHints.

/stream is a Starlette StreamingResponse that never ends on its own: it
stops only when the client leaves (Starlette listens for http.disconnect
on receive() while it streams). /poll answers nothing and waits on
receive() until the client leaves (a long poll). /seen reports how many http.disconnect
messages the app got and how many streams ended. /early sends an ASGI
http.response.early_hint before its answer.
"""
import asyncio

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

SEEN = {'disconnects': 0, 'ended': 0, 'started': 0, 'polls': 0}


async def forever():
    SEEN['started'] += 1
    try:
        n = 0
        while True:
            n += 1
            yield b'tick %d\n' % n
            await asyncio.sleep(0.02)
    finally:
        SEEN['ended'] += 1


async def stream(request):
    return StreamingResponse(forever(), media_type='text/plain')


async def seen(request):
    return PlainTextResponse('disconnects=%(disconnects)d ended=%(ended)d started=%(started)d polls=%(polls)d' % SEEN)


starlette = Starlette(routes=[Route('/stream', stream), Route('/seen', seen)])


async def early(scope, receive, send):
    if 'http.response.early_hint' not in scope.get('extensions', {}):
        raise RuntimeError('early_hint not advertised')
    await send({'type': 'http.response.early_hint',
                'links': [b'</style.css>; rel=preload; as=style', b'</app.js>; rel=preload; as=script']})
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': b'hinted'})


async def poll(scope, receive, send):
    # The (empty) body, then nothing until the client leaves; if it left
    # before the app got here, the first receive() says so already.
    while (await receive())['type'] != 'http.disconnect':
        pass
    SEEN['polls'] += 1


async def app(scope, receive, send):
    if scope['type'] == 'http' and scope['path'] == '/early':
        return await early(scope, receive, send)
    if scope['type'] == 'http' and scope['path'] == '/poll':
        return await poll(scope, receive, send)

    async def recording_receive():
        message = await receive()
        if message['type'] == 'http.disconnect':
            SEEN['disconnects'] += 1
        return message

    await starlette(scope, recording_receive, send)
