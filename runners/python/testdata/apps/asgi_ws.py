"""ASGI WebSocket echo for harness.py's handover checks (no framework)."""


async def app(scope, receive, send):
    if scope['type'] == 'lifespan':
        while True:
            msg = await receive()
            await send({'type': msg['type'] + '.complete'})
            if msg['type'] == 'lifespan.shutdown':
                return
    assert scope['type'] == 'websocket'
    await receive()  # websocket.connect
    if scope['path'] == '/deny':
        await send({'type': 'websocket.close'})
        return
    await send({'type': 'websocket.accept', 'subprotocol': 'echo',
                'headers': [(b'x-app', b'yes'), (b'connection', b'dropped')]})
    while True:
        msg = await receive()
        if msg['type'] == 'websocket.disconnect':
            return
        await send({'type': 'websocket.send', 'text': msg.get('text'), 'bytes': msg.get('bytes')})
