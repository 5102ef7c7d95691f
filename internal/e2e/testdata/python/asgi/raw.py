"""Plain ASGI 3 apps (no framework) for internal/e2e/asgi_test.go.

LOG names a file each app appends its lifespan and request events to."""
import asyncio
import json
import os


def log(line):
    with open(os.environ['LOG'], 'a') as f:
        f.write(line + '\n')


async def lifespan(receive, send, fail=None):
    msg = await receive()
    assert msg['type'] == 'lifespan.startup'
    if fail:
        await send({'type': 'lifespan.startup.failed', 'message': fail})
        return
    log('startup')
    await send({'type': 'lifespan.startup.complete'})
    msg = await receive()
    assert msg['type'] == 'lifespan.shutdown'
    log('shutdown')
    await send({'type': 'lifespan.shutdown.complete'})


async def answer(send, status, body, ctype=b'application/json'):
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', ctype)]})
    await send({'type': 'http.response.body', 'body': body})


async def app(scope, receive, send):
    """Lifespan with state; /scope answers the scope as JSON; /disconnect
    reads the body until http.disconnect; /sleep?S sleeps S seconds."""
    if scope['type'] == 'lifespan':
        scope['state']['counter'] = 'from-startup'
        return await lifespan(receive, send)
    path = scope['path'][len(scope['root_path']):]
    if path == '/scope':
        log('request')
        out = {k: scope[k] for k in ('http_version', 'method', 'scheme', 'path', 'root_path',
                                      'client', 'server')}
        out['raw_path'] = scope['raw_path'].decode('latin-1')
        out['query_string'] = scope['query_string'].decode('latin-1')
        out['headers'] = [[n.decode('latin-1'), v.decode('latin-1')] for n, v in scope['headers']]
        out['state'] = scope.get('state')
        return await answer(send, 200, json.dumps(out).encode())
    if path == '/disconnect':
        got = 0
        while True:
            msg = await receive()
            if msg['type'] == 'http.disconnect':
                log('disconnect after %d bytes' % got)
                return
            if not got:
                log('reading')
            got += len(msg['body'])
            if not msg.get('more_body'):
                break
        return await answer(send, 200, b'%d' % got, b'text/plain')
    if path == '/sleep':
        await asyncio.sleep(float(scope['query_string'] or 0.3))
        return await answer(send, 200, b'slept', b'text/plain')
    if path == '/pid':
        return await answer(send, 200, b'%d' % os.getpid(), b'text/plain')
    if path == '/pathsend':
        await send({'type': 'http.response.start', 'status': 200,
                    'headers': [(b'content-type', b'text/plain')]})
        await send({'type': 'http.response.pathsend', 'path': __file__})
        return
    await answer(send, 404, b'no', b'text/plain')


async def failing_startup(scope, receive, send):
    if scope['type'] == 'lifespan':
        return await lifespan(receive, send, fail='database at db:5432 unreachable')
    await answer(send, 200, b'never')


async def no_lifespan(scope, receive, send):
    """Django 3.2's way: lifespan is refused at once with an exception."""
    if scope['type'] != 'http':
        raise ValueError('only http, not %s' % scope['type'])
    await answer(send, 200, b'served without lifespan', b'text/plain')


class AsyncCallable:
    """An object whose __call__ is a coroutine function: ASGI by detection."""

    async def __call__(self, scope, receive, send):
        if scope['type'] == 'http':
            await answer(send, 200, b'object app', b'text/plain')


obj = AsyncCallable()
