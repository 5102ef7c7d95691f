"""FastAPI app for the ASGI end-to-end tests (internal/e2e/asgi_test.go)."""
import asyncio
import hashlib

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse

app = FastAPI()
released = asyncio.Event()  # /release lets /stream send its last chunk


@app.get('/')
async def hello():
    return {'hello': 'world'}


@app.post('/json')
async def echo_json(request: Request):
    data = await request.json()
    return {'got': data, 'keys': sorted(data)}


@app.post('/form')
async def form(name: str = Form(), count: int = Form()):
    return {'name': name, 'count': count * 2}


@app.post('/upload')
async def upload(file: UploadFile = File()):
    h = hashlib.sha256()
    size = 0
    while True:
        block = await file.read(65536)
        if not block:
            break
        h.update(block)
        size += len(block)
    return {'filename': file.filename, 'size': size, 'sha256': h.hexdigest()}


@app.get('/stream')
async def stream():
    async def chunks():
        yield b'first\n'
        # The last chunk waits for the client's /release, which it sends
        # only once it has read the first: the answer must be incremental.
        await asyncio.wait_for(released.wait(), 10)
        yield b'last\n'
    released.clear()
    return StreamingResponse(chunks(), media_type='text/plain')


@app.post('/release')
async def release():
    released.set()
    return {'released': True}


@app.get('/sleep')
async def sleep(s: float = 0.3):
    await asyncio.sleep(s)
    return {'slept': s}
