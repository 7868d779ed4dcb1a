"""A small single-file Django project for the compatibility tests, served as
``tests.server.frameworks.apps.django_app:application``."""

from __future__ import annotations

import hashlib
import os

import django
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="compatibility-tests-only",
    ROOT_URLCONF=__name__,
    ALLOWED_HOSTS=["*"],
    MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
    DATABASES={},
    INSTALLED_APPS=[],
)
django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpResponse,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path, reverse  # noqa: E402
from django.views.decorators.http import require_GET, require_POST  # noqa: E402

from tests.server.frameworks.apps.validated import validated  # noqa: E402

DATA = os.environ["COMPAT_DATA"]  # a file the tests write


@require_GET
def hello(request):
    return HttpResponse("Hello from Django\n", content_type="text/plain")


@require_POST
def echo(request):
    body = request.body
    return JsonResponse(
        {
            "size": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
            "form": request.POST.dict(),
            "content_type": request.content_type,
        }
    )


def stream(request):
    return StreamingHttpResponse((f"part {i}\n" for i in range(3)), content_type="text/plain")


def file(request):
    return FileResponse(open(DATA, "rb"), content_type="application/octet-stream")


def url(request):
    return JsonResponse({"url": reverse("hello"), "script_root": request.META["SCRIPT_NAME"]})


def error(request):
    raise RuntimeError("django view fails on purpose")


urlpatterns = [
    path("hello", hello, name="hello"),
    path("echo", echo),
    path("stream", stream),
    path("file", file),
    path("url", url),
    path("error", error),
]

application = validated(get_wsgi_application())
