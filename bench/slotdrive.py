#!/usr/bin/env python3
"""Runner CPU per request, without gw: pumps N requests through K pipe slots
of one Python runner (gw_wsgi.py, handing over to gw_asgi.py for an ASGI
app) and reads the runner's CPU time from /proc. The figure does not move
with the machine's load as req/s does, so it compares shim changes.

    bench/slotdrive.py APP K N [hello|echo]     # e.g. ../shared/bench/apps/hello_asgi.py 32 30000

hello: GET /; echo: POST /echo with a 1 KiB body (BODY=65536 in the
environment for another size; the yardstick's echo sends 64 KiB). A WSGI app gets
--wsgi-threads K. Requests are sent as gw sends them (head, body and end in
one write); K are kept in flight."""
import fcntl
import os
import select
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, '..', 'runners', 'python', 'gw_wsgi.py')
sys.path.insert(0, os.path.join(HERE, '..', 'runners', 'testdata'))
from bridgeharness import head_message  # noqa: E402

HDR = struct.Struct('<BBHI')
REQUEST_BODY, REQUEST_END, RESPONSE_END, READY = 2, 3, 6, 16
F_SETPIPE_SZ = 1031


def request(kind):
    path = b'/echo' if kind == 'echo' else b'/'
    pairs = [(b'REQUEST_METHOD', b'POST' if kind == 'echo' else b'GET'), (b'SCRIPT_NAME', b''),
             (b'PATH_INFO', path), (b'QUERY_STRING', b''), (b'REQUEST_URI', path),
             (b'SERVER_PROTOCOL', b'HTTP/1.1'), (b'SERVER_NAME', b'127.0.0.1'),
             (b'SERVER_PORT', b'8080'), (b'REMOTE_ADDR', b'127.0.0.1'), (b'REMOTE_PORT', b'40000'),
             (b'HTTP_HOST', b'127.0.0.1:8080')]
    if kind != 'echo':
        return head_message(pairs) + HDR.pack(REQUEST_END, 0, 0, 0)
    size = int(os.environ.get('BODY', '1024'))
    pairs += [(b'CONTENT_TYPE', b'application/octet-stream'), (b'CONTENT_LENGTH', b'%d' % size)]
    return (head_message(pairs) + HDR.pack(REQUEST_BODY, 0, 0, size) + b'a' * size
            + HDR.pack(REQUEST_END, 0, 0, 0))


def cpu(pid):
    """(user, user + system) seconds of pid."""
    f = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    tick = os.sysconf('SC_CLK_TCK')
    return int(f[11]) / tick, (int(f[11]) + int(f[12])) / tick


def main(app, k, n, kind='hello'):
    control, theirs = socket.socketpair()
    slots, fds, spec = [], [theirs.fileno()], []
    for _ in range(k):
        qr, qw = os.pipe()  # request: we write qw, the runner reads qr
        fcntl.fcntl(qw, F_SETPIPE_SZ, 128 << 10)  # as gw's (runners/worker.go)
        ar, aw = os.pipe()  # answer: the runner writes aw, we read ar
        slots.append((qw, ar))
        fds += (qr, aw)
        spec.append('%d:%d' % (qr, aw))
    cmd = [sys.executable, '-u', SHIM, '--app', app, '--control-fd', str(theirs.fileno()),
           '--slot-fds', ','.join(spec), '--wsgi-threads', str(k)]
    proc = subprocess.Popen(cmd, pass_fds=fds)
    for fd in fds:
        os.close(fd)
    try:
        if control.recv(65536)[:1] != bytes([READY]):
            raise SystemExit('the runner did not start')
        req = request(kind)
        poll = select.epoll()
        state = {}
        for qw, ar in slots:
            poll.register(ar, select.EPOLLIN)
            state[ar] = [qw, b'']

        def run(count):
            sent = done = 0
            for qw, _ in slots[:count]:
                os.write(qw, req)
                sent += 1
            while done < count:
                for fd, _ in poll.poll():
                    st = state[fd]
                    st[1] += os.read(fd, 1 << 17)
                    while True:  # answers end with RESPONSE_END
                        buf, pos, end = st[1], 0, False
                        while len(buf) - pos >= 8:
                            ftype, _, _, size = HDR.unpack_from(buf, pos)
                            if len(buf) - pos < 8 + size:
                                break
                            pos += 8 + size
                            if ftype == RESPONSE_END:
                                end = True
                                break
                        if not end:
                            break
                        st[1] = buf[pos:]
                        done += 1
                        if sent < count:
                            os.write(st[0], req)
                            sent += 1

        run(min(2000, max(n // 5, k)))  # warm-up
        (u0, c0), t0 = cpu(proc.pid), time.monotonic()
        run(n)
        (u1, c1), t1 = cpu(proc.pid), time.monotonic()
        print('%s %s K=%d N=%d: runner CPU %.1f µs/request (user %.1f), %.0f req/s' % (
            kind, os.path.basename(app), k, n, (c1 - c0) / n * 1e6, (u1 - u0) / n * 1e6,
            n / (t1 - t0)))
    finally:
        control.close()  # the runner exits on control EOF
        proc.wait(10)


if __name__ == '__main__':
    if len(sys.argv) not in (4, 5):
        raise SystemExit(__doc__)
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:])
