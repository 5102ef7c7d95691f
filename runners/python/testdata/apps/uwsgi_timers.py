"""@timer and @cron of uwsgidecorators (harness.py timer_token): each call
appends "kind pid [minute]" to $LOG."""
import os
import time

from uwsgidecorators import cron, timer

LOG = os.environ['LOG']


def event(*parts):
    with open(LOG, 'a') as f:
        f.write(' '.join(str(p) for p in parts) + '\n')


@timer(0.2)
def tick(signum):
    event('tick', os.getpid())


@cron(-1, -1, -1, -1, -1)
def every_minute(signum):
    event('cron', os.getpid(), int(time.time() // 60))


def application(environ, start_response):
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
