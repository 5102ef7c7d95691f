#!/usr/bin/env python3
"""gw_asgi.build_scope: gw's heads (cgi.Build's lead order) take the
positional path, every other head the general one, and both give the
same scope. Run by TestASGIScope (python_test.go); exit 0 iff all pass."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(HERE, '..', '..', 'testdata'))
from bridgeharness import head_message  # noqa: E402  (imports gw_wsgi as gw_wsgi)
import gw_wsgi  # noqa: E402
import gw_asgi  # noqa: E402

HDR_SIZE = 8  # a frame header

LEAD = [(b'REQUEST_METHOD', b'POST'), (b'SCRIPT_NAME', b'/mnt'), (b'PATH_INFO', b'/caf\xc3\xa9'),
        (b'QUERY_STRING', b'a=1'), (b'REQUEST_URI', b'/mnt/caf%C3%A9?a=1'),
        (b'SERVER_PROTOCOL', b'HTTP/1.0'), (b'SERVER_NAME', b'example.org'),
        (b'SERVER_PORT', b'8443'), (b'REMOTE_ADDR', b'10.0.0.7'), (b'REMOTE_PORT', b'40001')]
REST = [(b'CONTENT_TYPE', b'text/plain'), (b'CONTENT_LENGTH', b'3'), (b'HTTP_HOST', b'example.org'),
        (b'HTTP_X_FORWARDED_FOR', b'1.2.3.4'), (b'HTTP_X_EMPTY', b''), (b'HTTPS', b'on')]

CASES = [  # name, env pairs, positional path taken
    ('gw order', LEAD + REST, True),
    ('gw order, no headers', LEAD, True),
    ('root mount', [(n, b'' if n == b'SCRIPT_NAME' else v) for n, v in LEAD] + REST, True),
    ('PATH_INFO with NUL (in env, not the block)',
     [(n, b'/a\0b' if n == b'PATH_INFO' else v) for n, v in LEAD] + REST, False),
    ('a lead name again later (last wins)', LEAD + REST + [(b'REQUEST_METHOD', b'PUT')], False),
    ('another order', LEAD[1:] + LEAD[:1] + REST, False),
    ('lead cut short', LEAD[:6] + REST, False),
]


def main():
    calls = []
    general = gw_asgi.scope_from_env

    def counting(*args):
        calls.append(1)
        return general(*args)
    gw_asgi.scope_from_env = counting
    failed = 0
    for name, pairs, positional in CASES:
        payload = head_message(pairs, scheme='https', rid='r1')[HDR_SIZE:]
        env, scheme, rid, block = gw_wsgi.decode_head(payload)
        items = (block.split(b'\0') if block else []) + list(env)
        del calls[:]
        for state in (None, {'k': 1}):
            got = gw_asgi.build_scope(payload, state)
            want = general(items, scheme, rid, state)
            if got != want:
                failed += 1
                print('FAIL %s (state %r):\n  got  %r\n  want %r' % (name, state, got, want))
        if bool(calls) == positional:
            failed += 1
            print('FAIL %s: positional path %s, want %s' % (name, not calls, positional))
    # The scope itself, once by hand for gw's order.
    scope, rid = gw_asgi.build_scope(head_message(LEAD + REST, rid='r1')[HDR_SIZE:], None)
    want = {'method': 'POST', 'path': '/mnt/caf\u00e9', 'root_path': '/mnt', 'raw_path': b'/mnt/caf%C3%A9',
            'query_string': b'a=1', 'http_version': '1.0', 'scheme': 'http',
            'client': ('10.0.0.7', 40001), 'server': ('example.org', 8443),
            'headers': [(b'host', b'example.org'), (b'x-forwarded-for', b'1.2.3.4'), (b'x-empty', b''),
                        (b'content-type', b'text/plain'), (b'content-length', b'3')]}
    for key, value in want.items():
        if scope[key] != value:
            failed += 1
            print('FAIL scope[%r] = %r, want %r' % (key, scope[key], value))
    if rid != 'r1':
        failed += 1
        print('FAIL request id %r' % rid)
    print('%d cases, %d failures' % (len(CASES), failed))
    sys.exit(1 if failed else 0)


if __name__ == '__main__':
    main()
