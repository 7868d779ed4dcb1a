"""Oversized requests get 414/431/413 from the first hop that sees them, and
the two hops agree: nginx passes exactly what the server accepts (the limits
are the same .env values, see test_nginx_config.py), and the server refuses
the same sizes itself for whatever reaches it from inside the network."""

from __future__ import annotations

import pytest

from tests.support.rawhttp import exchange_in_container, first_response, request

pytestmark = pytest.mark.integration


def _through_nginx(stack, payload: bytes):
    return first_response(*stack.exchange(payload))


def _straight_to_server(stack, payloads: list[bytes]):
    results = exchange_in_container(stack.container("app"), payloads)
    return [first_response(data, closed) for data, closed in results]


def _target(length: int) -> str:
    """A request-target of exactly ``length`` bytes for /api/echo."""
    prefix = "/api/echo?pad="
    return prefix + "a" * (length - len(prefix))


def _field(size: int) -> tuple[str, str]:
    """A header field whose name and value are ``size`` bytes together."""
    return ("X-Pad", "v" * (size - len("X-Pad")))


def _limits(stack) -> tuple[int, int, int, int]:
    env = stack.env
    return (
        int(env["LIMIT_REQUEST_LINE"]),
        int(env["LIMIT_REQUEST_FIELD_SIZE"]),
        int(env["LIMIT_REQUEST_FIELDS"]),
        int(env["LIMIT_REQUEST_BODY"]),
    )


def test_request_target_at_the_limit_reaches_the_app_one_byte_more_is_414_from_nginx(stack):
    line, *_ = _limits(stack)
    refused_by_server = stack.request_count("_OTHER", 414)
    at_limit = _through_nginx(stack, request("GET", _target(line), [("Connection", "close")]))
    assert at_limit.status == 200
    assert len(at_limit.json()["query"]) == line - len("/api/echo?")
    over = _through_nginx(stack, request("GET", _target(line + 1)))
    assert over.status == 414
    assert over.header_values("content-type") == ["text/html"]  # nginx's page, not the server's
    assert stack.request_count("_OTHER", 414) == refused_by_server


def test_header_field_at_the_limit_reaches_the_app_one_byte_more_is_431_from_nginx(stack):
    _, field_size, _, _ = _limits(stack)
    refused_by_server = stack.request_count("_OTHER", 431)
    name, value = _field(field_size)
    at_limit = _through_nginx(
        stack, request("GET", "/api/echo", [(name, value), ("Connection", "close")])
    )
    assert at_limit.status == 200
    assert at_limit.json()["headers"]["X-Pad"] == value
    over = _through_nginx(stack, request("GET", "/api/echo", [_field(field_size + 1)]))
    assert over.status == 431
    assert over.body == b"431 Request Header Fields Too Large\n"  # nginx's, not the server's
    assert stack.request_count("_OTHER", 431) == refused_by_server


def test_too_many_header_fields_get_431_from_the_server(stack):
    """nginx has no count limit (its buffers bound the head's size): the server's applies."""
    _, _, fields, _ = _limits(stack)
    refused_by_server = stack.request_count("_OTHER", 431)
    many = [(f"X-F{i}", "v") for i in range(fields + 1)]
    over = _through_nginx(stack, request("GET", "/api/echo", many))
    assert over.status == 431
    assert stack.request_count("_OTHER", 431) == refused_by_server + 1
    few = [(f"X-F{i}", "v") for i in range(fields // 2)] + [("Connection", "close")]
    assert _through_nginx(stack, request("GET", "/api/echo", few)).status == 200


def test_body_over_the_limit_is_413_from_nginx_before_it_is_sent(stack):
    *_, body = _limits(stack)
    refused_by_server = stack.request_count("_OTHER", 413)
    over = _through_nginx(
        stack, request("POST", "/api/upload", [("Content-Length", str(body + 1))])
    )
    assert over.status == 413
    assert stack.request_count("_OTHER", 413) == refused_by_server


def test_the_server_refuses_the_same_sizes_itself(stack):
    line, field_size, fields, body = _limits(stack)
    close = ("Connection", "close")
    answers = _straight_to_server(
        stack,
        [
            request("GET", _target(line), [close]),
            request("GET", _target(line + 1), [close]),
            request("GET", "/api/echo", [_field(field_size), close]),
            request("GET", "/api/echo", [_field(field_size + 1), close]),
            # With Host and Connection: exactly `fields` fields, then one more.
            request("GET", "/api/echo", [(f"X-F{i}", "v") for i in range(fields - 2)] + [close]),
            request("GET", "/api/echo", [(f"X-F{i}", "v") for i in range(fields - 1)] + [close]),
            request("POST", "/api/upload", [("Content-Length", str(body + 1)), close]),
        ],
    )
    assert [a.status for a in answers] == [200, 414, 200, 431, 200, 431, 413]
