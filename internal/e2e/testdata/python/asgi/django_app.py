"""A one-file Django project served through django.core.asgi, async view."""
import asyncio

from django.conf import settings

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=['*'], SECRET_KEY='e2e-only')

from django.core.asgi import get_asgi_application  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402


async def hello(request):
    await asyncio.sleep(0)
    return HttpResponse('Hello from Django async')

urlpatterns = [path('', hello)]
application = get_asgi_application()
