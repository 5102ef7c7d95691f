"""A single-file Django project whose download view hands the file to the
server, as django-sendfile2's xsendfile backend does."""
import os

from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    SECRET_KEY="test-only",
    MIDDLEWARE=[],
)


def download(request):
    response = HttpResponse(content_type="application/x-report")
    response["Content-Disposition"] = 'attachment; filename="r.bin"'
    response["X-Sendfile"] = os.path.join(os.environ["SENDFILE_ROOT"], request.GET["name"])
    return response


urlpatterns = [path("dl", download)]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
