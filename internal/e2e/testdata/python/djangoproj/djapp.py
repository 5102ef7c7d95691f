"""A minimal single-file Django project."""
import os

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="test-only",
    MIDDLEWARE=[],
)


def index(request):
    return HttpResponse("Hello from Django")


def echo(request):
    return JsonResponse({"method": request.method, "path": request.path,
                         "path_info": request.path_info, "body": request.body.decode(),
                         "setting": os.environ.get("GW_TEST_SETTING", "")})


urlpatterns = [path("", index), path("echo", echo)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
