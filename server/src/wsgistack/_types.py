"""Type aliases for PEP 3333's callables, as the server uses them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, TypeAlias

# PEP 3333: "environ" is a dict with str keys; values are str or server objects.
Environ: TypeAlias = dict[str, Any]
ExcInfo: TypeAlias = tuple[type[BaseException], BaseException, TracebackType | None]
Headers: TypeAlias = list[tuple[str, str]]
# PEP 3333: start_response(status, response_headers, exc_info=None) -> write(data)
StartResponse: TypeAlias = Callable[..., Callable[[bytes], object]]
# PEP 3333: application(environ, start_response) -> iterable of bytes
WSGIApp: TypeAlias = Callable[[Environ, StartResponse], Iterable[bytes]]

# The environ key where an application names the route template that matched
# (``/users/<int:id>``): the metrics' bounded ``http_route`` label.
ROUTE_ENVIRON_KEY = "wsgistack.http_route"
