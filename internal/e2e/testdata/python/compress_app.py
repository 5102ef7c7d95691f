# Answers for the compression tests: a JSON document, a small one, a PNG,
# a stream that pauses between its parts, and an X-Sendfile answer.
import json
import os
import time

DOC = json.dumps([{"id": i, "name": "user%d" % i, "tags": ["a", "b"], "ok": i % 2 == 0} for i in range(2000)]).encode()


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/json":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(DOC))), ("ETag", '"doc1"')])
        return [DOC]
    if path == "/small":
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")])
        return [b'{"ok":true}']
    if path == "/png":
        start_response("200 OK", [("Content-Type", "image/png")])
        return [DOC]
    if path == "/notransform":
        start_response("200 OK", [("Content-Type", "application/json"), ("Cache-Control", "no-transform")])
        return [DOC]
    if path == "/stream":
        start_response("200 OK", [("Content-Type", "text/plain")])

        def parts():
            yield b"first part\n"
            time.sleep(4)
            yield b"second part\n"
        return parts()
    if path == "/file":
        f = os.environ["SENDFILE_ROOT"] + "/report.bin"
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("X-Sendfile", f)])
        return []
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]
