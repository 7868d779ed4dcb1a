from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse


def index(request: HttpRequest) -> HttpResponse:
    """Reads the database: answers only once `make manage CMD=migrate` has run."""
    request.environ["wsgistack.http_route"] = "/"  # the route, for the server's metrics
    return HttpResponse(f"Hello from the Django example: {User.objects.count()} users\n")
