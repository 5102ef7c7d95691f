"""A Flask app written for uWSGI's WebSocket API (uwsgi.websocket_*), run
unchanged by gw and by uWSGI itself (internal/e2e/uwsgi_ws_test.go)."""
import os
import time

import uwsgi
from flask import Flask, request

app = Flask(__name__)
LOG = os.environ.get('LOG')


def log(line):
    if LOG:
        with open(LOG, 'a') as f:
            f.write(line + '\n')


@app.route('/http')
def plain():
    return 'ok %d' % os.getpid()


# websocket=True: Werkzeug's routing sees a WebSocket handshake (Upgrade
# and Connection in environ, under uWSGI and gw alike) as ws:// and matches
# only rules marked for it.
@app.route('/echo', websocket=True)
@app.route('/echo-binary', websocket=True)
def echo():
    # As uWSGI's docs write it.
    uwsgi.websocket_handshake(request.environ['HTTP_SEC_WEBSOCKET_KEY'], request.environ.get('HTTP_ORIGIN', ''))
    send = uwsgi.websocket_send_binary if request.path == '/echo-binary' else uwsgi.websocket_send
    try:
        while True:
            send(uwsgi.websocket_recv())
    except IOError as e:
        log('gone %s %s' % (request.path, e))
    return ''


@app.route('/pid', websocket=True)
def pid():
    # Says which runner holds the session, then waits for the client to go.
    uwsgi.websocket_handshake()
    uwsgi.websocket_send(str(os.getpid()))
    try:
        while True:
            uwsgi.websocket_recv()
    except IOError:
        pass
    return ''


@app.route('/nb', websocket=True)
def nonblocking():
    uwsgi.websocket_handshake()
    idle = 0
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        msg = uwsgi.websocket_recv_nb()
        if msg == b'':
            idle += 1
            if idle == 1:
                uwsgi.websocket_send('idle %r' % msg)
            time.sleep(0.005)
            continue
        uwsgi.websocket_send(b'got ' + msg)
        return ''
    return ''


@app.route('/refuse', websocket=True)
def refuse():
    return 'no WebSocket here', 403


@app.route('/types', websocket=True)
def types():
    uwsgi.websocket_handshake()
    msg = uwsgi.websocket_recv()
    uwsgi.websocket_send('%s %s' % (type(msg).__name__, type(uwsgi.opt).__name__))
    return ''
