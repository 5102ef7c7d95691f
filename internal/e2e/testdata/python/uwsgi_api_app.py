"""A Flask app written for uWSGI's Python API (uwsgi, uwsgidecorators),
run unchanged by gw and by uWSGI itself (internal/e2e/uwsgi_api_test.go).
Events go to the file $LOG, one line each: "kind worker_id pid ...".
"""
import os
import threading
import time

import uwsgi
from uwsgi import opt
from uwsgidecorators import cron, lock, postfork, rbtimer, spool, thread, timer
from flask import Flask, jsonify, request

app = Flask(__name__)
LOG = os.environ['LOG']
COUNTER = LOG + '.counter'
POSTFORK = []


def event(*parts):
    with open(LOG, 'a') as f:  # one short O_APPEND write per line
        f.write(' '.join(str(p) for p in parts) + '\n')


@postfork
def after_start():
    POSTFORK.append(os.getpid())
    event('postfork', uwsgi.worker_id(), os.getpid())


@timer(1)
def tick(signum):
    event('tick', uwsgi.worker_id(), os.getpid(), '%.3f' % time.time())


@rbtimer(2)
def rbtick(signum):
    event('rbtick', uwsgi.worker_id(), os.getpid(), '%.3f' % time.time())


@cron(-1, -1, -1, -1, -1)
def every_minute(signum):
    event('cron', uwsgi.worker_id(), os.getpid(), time.strftime('%H:%M'))


@thread
def background(tag):
    event('thread', uwsgi.worker_id(), os.getpid(), tag, threading.current_thread().daemon)


@lock
def bump():
    # A read-modify-write that loses updates unless the lock holds across
    # the runners.
    try:
        with open(COUNTER) as f:
            n = int(f.read() or 0)
    except FileNotFoundError:
        n = 0
    time.sleep(0.002)
    with open(COUNTER, 'w') as f:
        f.write(str(n + 1))
    return n + 1


@app.route('/info')
def info():
    time.sleep(float(request.args.get('sleep', 0)))  # concurrent ones spread over the runners
    return jsonify(worker_id=uwsgi.worker_id(), numproc=uwsgi.numproc, mule_id=uwsgi.mule_id(),
                   pid=os.getpid(), enable_threads=repr(opt.get('enable-threads')),
                   threads_in_opt='threads' in opt, postfork=POSTFORK == [os.getpid()])


@app.route('/bump')
def do_bump():
    return str(bump())


@app.route('/thread')
def do_thread():
    t = background(request.args.get('tag', 'x'))
    return 'started %s' % (t is not None)


@app.route('/logvar')
def logvar():
    uwsgi.set_logvar('user', 'alice')
    uwsgi.set_logvar('plan', request.args.get('plan', 'free'))
    return 'set %s' % uwsgi.get_logvar('plan')


@app.route('/reload')
def reload():
    return 'reload %s' % uwsgi.reload()


@app.route('/missing')
def missing():
    try:
        uwsgi.sharedarea_read(0, 0)
    except NotImplementedError as e:
        return 'NotImplementedError %s hasattr=%s' % (e, hasattr(uwsgi, 'sharedarea_read'))
    return 'present'


@app.route('/cache/<op>')
def cache(op):
    k = request.args.get('k', 'k')
    if op == 'get':
        time.sleep(float(request.args.get('sleep', 0)))  # concurrent ones spread over the runners
        v = uwsgi.cache_get(k)
        return jsonify(worker_id=uwsgi.worker_id(), value=v.decode() if v is not None else None)
    if op == 'set':
        r = uwsgi.cache_set(k, request.args['v'].encode(), int(request.args.get('ttl', 0)))
    elif op == 'update':
        r = uwsgi.cache_update(k, request.args['v'].encode(), int(request.args.get('ttl', 0)))
    elif op == 'del':
        r = uwsgi.cache_del(k)
    elif op == 'exists':
        r = uwsgi.cache_exists(k)
    else:
        r = uwsgi.cache_clear()
    return repr(r)


@spool
def spooled(args):
    tag = args['tag']
    tag = tag.decode() if isinstance(tag, bytes) else tag
    marker = LOG + '.tried-' + tag
    if tag.startswith('flaky') and not os.path.exists(marker):
        open(marker, 'w').close()
        raise RuntimeError('the first try of a flaky job fails')
    event('spooled', uwsgi.worker_id(), os.getpid(), tag)


@app.route('/spool')
def do_spool():
    job = {'tag': request.args['tag']}
    if 'at' in request.args:
        job['at'] = str(time.time() + float(request.args['at']))
    spooled.spool(job)
    return 'spooled'
