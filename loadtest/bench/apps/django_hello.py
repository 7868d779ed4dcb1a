"""Django hello world (``loadtest.bench.apps.django_hello:app``): a single-file project,
its settings configured in code (``settings.configure``), one URL and one view.

GET / answers GREETING as text/plain through Django's WSGI handler, URL resolver and
the middleware of a new project (``startproject``) that keeps no state: security,
common and clickjacking; no apps, no database, no sessions. DEBUG off, as served.
"""

from __future__ import annotations

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path

GREETING = b"Hello from Django!\n"


def hello(request: HttpRequest) -> HttpResponse:
    """GREETING, 200, text/plain."""
    return HttpResponse(GREETING, content_type="text/plain")


urlpatterns = [path("", hello)]

settings.configure(
    DEBUG=False,
    SECRET_KEY="make-bench-only: this app signs nothing",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],  # the bench's loopback requests
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    DATABASES={},
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
)
django.setup()
app = get_wsgi_application()
