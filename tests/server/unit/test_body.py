"""The request body buffer between the parser and wsgi.input (wsgistack.http.body)."""

from __future__ import annotations

import random

import pytest
from wsgistack.http.body import NO_BODY, Body
from wsgistack.http.parser import Limits, RequestParser

DATA = b"".join(b"line %d\n" % n if n % 3 else b"x" * n for n in range(200))


def _pieces(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(DATA)), 40))
    return [DATA[a:b] for a, b in zip([0, *cuts], [*cuts, len(DATA)], strict=True)]


@pytest.mark.parametrize("seed", range(20))
def test_reads_and_line_searches_match_one_flat_buffer(seed):
    """Random pieces, random reads and newline searches: the same bytes as a
    bytearray read from its front would give, in order, nothing lost or repeated."""
    rng = random.Random(1000 + seed)
    body, model = Body(), bytearray()
    pieces = _pieces(seed)
    got = []
    while pieces or model:
        if pieces and rng.random() < 0.4:
            piece = pieces.pop(0)
            body.append(piece)
            model += piece
        start = rng.randrange(len(model) + 1)
        assert body.find_newline(start) == model.find(b"\n", start)
        size = rng.choice([1, 3, 7, 64, 500, len(model) or 1])
        data = body.read(size)
        assert data == bytes(model[:size]) and type(data) is bytes
        del model[:size]
        assert len(body) == len(model) and bytes(body) == bytes(model)
        got.append(data)
    assert b"".join(got) == DATA


def test_a_whole_piece_is_handed_out_without_a_copy():
    body = Body()
    first, second = b"a" * 65536, b"b" * 1000
    body.append(first)
    body.append(second)
    assert body.read(65536) is first
    assert body.read(5) == b"bbbbb" and len(body) == 995


def test_empty_pieces_reads_and_clear():
    body = Body()
    body.append(b"")
    assert len(body) == 0 and body.read(10) == b"" and body.find_newline() == -1
    body.append(b"abc\n")
    assert body.read(0) == b"" and body.read(-1) == b""
    body.clear()
    assert len(body) == 0 and bytes(body) == b""


def test_a_request_gets_its_own_body_with_its_first_byte():
    """Requests without body bytes share NO_BODY (no Body each); one with a body gets
    its own, and NO_BODY stays empty."""
    parser = RequestParser(Limits(8190, 100, 8190, 0))
    parser.feed(
        b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nde"
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"
    )
    get, first, second, empty = parser.requests
    assert get.body is NO_BODY and empty.body is NO_BODY
    assert first.body is not second.body
    assert (bytes(first.body), bytes(second.body)) == (b"abc", b"de")
    assert len(NO_BODY) == 0
