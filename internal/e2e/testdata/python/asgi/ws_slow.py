"""An ASGI WebSocket app slow to accept (internal/e2e/websocket_slow_test.go)."""
import asyncio


async def app(scope, receive, send):
    if scope['type'] != 'websocket':
        return
    await receive()  # websocket.connect
    await asyncio.sleep(0.2)  # past gw's idle watch of the connection (50 ms)
    await send({'type': 'websocket.accept'})
    while True:
        msg = await receive()
        if msg['type'] == 'websocket.disconnect':
            return
        await send({'type': 'websocket.send', 'text': msg.get('text') or ''})
