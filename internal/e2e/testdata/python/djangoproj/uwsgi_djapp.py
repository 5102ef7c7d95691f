"""A single-file Django project on uWSGI's Python API: the same routes and
events as uwsgi_api_app.py (the Flask one), as Django views
(internal/e2e/uwsgi_api_test.go, TestUwsgiAPIDjango)."""
import asyncio
import json
import os
import threading
import time

import uwsgi
from uwsgi import opt
from uwsgidecorators import cron, lock, postfork, spool, thread, timer
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path

settings.configure(DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   SECRET_KEY="test-only", MIDDLEWARE=[])

LOG = os.environ['LOG']
COUNTER = LOG + '.counter'
POSTFORK = []


def event(*parts):
    with open(LOG, 'a') as f:
        f.write(' '.join(str(p) for p in parts) + '\n')


@postfork
def after_start():
    POSTFORK.append(os.getpid())
    event('postfork', uwsgi.worker_id(), os.getpid())


@timer(1)
def tick(signum):
    event('tick', uwsgi.worker_id(), os.getpid(), '%.3f' % time.time())


@cron(-1, -1, -1, -1, -1)
def every_minute(signum):
    event('cron', uwsgi.worker_id(), os.getpid(), time.strftime('%H:%M'))


@thread
def background(tag):
    event('thread', uwsgi.worker_id(), os.getpid(), tag, threading.current_thread().daemon)


@lock
def bump():
    try:
        with open(COUNTER) as f:
            n = int(f.read() or 0)
    except FileNotFoundError:
        n = 0
    time.sleep(0.002)
    with open(COUNTER, 'w') as f:
        f.write(str(n + 1))
    return n + 1


@spool
def spooled(args):
    tag = args['tag']
    event('spooled', uwsgi.worker_id(), os.getpid(), tag.decode() if isinstance(tag, bytes) else tag)


def info(request):
    time.sleep(float(request.GET.get('sleep', 0)))
    return JsonResponse(dict(worker_id=uwsgi.worker_id(), numproc=uwsgi.numproc, mule_id=uwsgi.mule_id(),
                             pid=os.getpid(), enable_threads=repr(opt.get('enable-threads')),
                             threads_in_opt='threads' in opt, postfork=POSTFORK == [os.getpid()]))


def do_bump(request):
    return HttpResponse(str(bump()))


def do_thread(request):
    t = background(request.GET.get('tag', 'x'))
    return HttpResponse('started %s' % (t is not None))


def logvar(request):
    uwsgi.set_logvar('user', 'alice')
    uwsgi.set_logvar('plan', request.GET.get('plan', 'free'))
    return HttpResponse('set %s' % uwsgi.get_logvar('plan'))


async def alogvar(request):
    # An async view (ASGI): runs on the event loop, interleaved with the
    # other requests of the runner; each keeps its own fields.
    uwsgi.set_logvar('user', 'bob')
    await asyncio.sleep(0.05)
    uwsgi.set_logvar('plan', request.GET.get('plan', 'free'))
    return HttpResponse('set %s' % uwsgi.get_logvar('plan'))


def do_reload(request):
    return HttpResponse('reload %s' % uwsgi.reload())


def missing(request):
    try:
        uwsgi.sharedarea_read(0, 0)
    except NotImplementedError as e:
        return HttpResponse('NotImplementedError %s hasattr=%s' % (e, hasattr(uwsgi, 'sharedarea_read')))
    return HttpResponse('present')


def cache(request, op):
    k = request.GET.get('k', 'k')
    if op == 'get':
        time.sleep(float(request.GET.get('sleep', 0)))
        v = uwsgi.cache_get(k)
        return JsonResponse(dict(worker_id=uwsgi.worker_id(), value=v.decode() if v is not None else None))
    ttl = int(request.GET.get('ttl', 0))
    r = {'set': lambda: uwsgi.cache_set(k, request.GET['v'].encode(), ttl),
         'update': lambda: uwsgi.cache_update(k, request.GET['v'].encode(), ttl),
         'del': lambda: uwsgi.cache_del(k),
         'exists': lambda: uwsgi.cache_exists(k),
         'clear': lambda: uwsgi.cache_clear()}[op]()
    return HttpResponse(repr(r))


def do_spool(request):
    spooled.spool({'tag': request.GET['tag']})
    return HttpResponse('spooled')


urlpatterns = [path('info', info), path('bump', do_bump), path('thread', do_thread),
               path('logvar', logvar), path('alogvar', alogvar), path('cache/<str:op>', cache), path('reload', do_reload),
               path('missing', missing), path('spool', do_spool)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()

from django.core.asgi import get_asgi_application  # noqa: E402

asgi_application = get_asgi_application()  # the same views under ASGI (TestUwsgiLogvarASGI)
