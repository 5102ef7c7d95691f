"""ASGI app for harness.py's eager_start check: each answer says whether
its start and its end ran inside the slot reader's callback (gw_asgi's
Slot.eager, found on the stack), which task asyncio says runs it, and the
uwsgi logvar it set."""
import asyncio
import sys

import uwsgi


def eager():
    """Whether the caller runs inside Slot.eager (the reader's callback)."""
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == 'eager' and 'Slot' in repr(f.f_locals.get('self')):
            return True
        f = f.f_back
    return False


async def app(scope, receive, send):
    if scope['type'] != 'http':
        return
    start_eager, task = eager(), asyncio.current_task()
    query = scope['query_string'].decode()
    uwsgi.set_logvar('q', query or 'none')
    await receive()
    if query.startswith('sleep='):
        await asyncio.sleep(float(query[6:]))
    body = 'start_eager=%s end_eager=%s task=%s logvar=%s' % (
        start_eager, eager(), task.get_name() if task else None, uwsgi.get_logvar('q'))
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': body.encode()})
