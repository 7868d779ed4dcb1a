"""server.protocol: RequestParser on llhttp, limits, response heads; with
property-based tests (hypothesis) on request parsing and body framing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wsgistack.http.parser import HttpError, Limits, RequestParser
from wsgistack.http.response import (
    bodiless,
    error_response,
    http_date,
    reason_phrase,
    response_head,
)

LIMITS = Limits(request_line=1024, fields=20, field_size=512, body=4096)


def parse(*pieces: bytes, limits: Limits = LIMITS) -> RequestParser:
    parser = RequestParser(limits)
    for piece in pieces:
        parser.feed(piece)
    return parser


def test_simple_request():
    parser = parse(b"GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-A:  v \r\n\r\n")
    [request] = parser.requests
    assert (request.method, request.target, request.path, request.query) == (
        "GET",
        b"/a/b?x=1",
        b"/a/b",
        b"x=1",
    )
    assert request.headers == [("Host", "h"), ("X-A", "v")]
    assert request.keep_alive and request.complete and not request.chunked
    assert parser.error is None


def test_pipelined_requests_in_order_with_bodies():
    parser = parse(
        b"POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc"
        b"POST /2 HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
        b"GET /3 HTTP/1.0\r\n\r\n"
    )
    assert [bytes(r.body) for r in parser.requests] == [b"abc", b"de", b""]
    assert [r.path for r in parser.requests] == [b"/1", b"/2", b"/3"]
    assert [r.keep_alive for r in parser.requests] == [True, True, False]


def test_trailers_are_kept_apart():
    parser = parse(
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nx\r\n0\r\nX-Sum: 1\r\n\r\n"
    )
    [request] = parser.requests
    assert request.trailers == [("X-Sum", "1")]
    assert ("X-Sum", "1") not in request.headers


def test_head_pending_until_the_blank_line():
    parser = parse(b"GET / HTTP/1.1\r\nHost: h\r\n")
    assert parser.head_pending and not parser.requests
    parser.feed(b"\r\n")
    assert not parser.head_pending and len(parser.requests) == 1


def test_expect_continue_only_for_http_1_1():
    one = parse(b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
    zero = parse(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n")
    assert one.requests[0].expect_continue and not zero.requests[0].expect_continue


def test_connection_header_rules():
    assert (
        not parse(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").requests[0].keep_alive
    )
    assert parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests[0].keep_alive


def test_upgrade_stops_parsing_and_closes():
    parser = parse(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    assert parser.stopped and len(parser.requests) == 1
    assert not parser.requests[0].keep_alive


def status_of(raw: bytes, limits: Limits = LIMITS) -> int | None:
    parser = parse(raw, limits=limits)
    return parser.error.status if parser.error else None


def test_limits():
    assert status_of(b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\nHost: h\r\n\r\n") == 414
    many = b"".join(b"X-%d: v\r\n" % i for i in range(21))
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\n" + many + b"\r\n") == 431
    assert status_of(b"GET / HTTP/1.1\r\nHost: h\r\nX: " + b"v" * 600 + b"\r\n\r\n") == 431
    assert status_of(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\n\r\n") == 413
    chunked = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert status_of(chunked + b"1000\r\n" + b"x" * 4096 + b"\r\n1\r\nx\r\n") == 413


def test_zero_limits_mean_unlimited():
    raw = b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: h\r\n\r\n"
    assert status_of(raw, Limits(0, 0, 0, 0)) is None
    in_flight = RequestParser(Limits(0, 0, 0, 0))  # also while the lines arrive
    for start, size in ((b"GET /", 8000), (b" HTTP/1.1\r\nHost: h\r\nX-Big: ", 65536)):
        in_flight.feed(start)
        assert feed_until_refused(in_flight, b"a" * size, 4) == 4 and in_flight.error is None
    in_flight.feed(b"\r\n\r\n")
    assert len(in_flight.requests[0].target) == 1 + 4 * 8000
    assert len(in_flight.requests[0].header("X-Big")) == 4 * 65536


def feed_until_refused(parser: RequestParser, piece: bytes, most: int) -> int:
    """Feed ``piece`` up to ``most`` times; the number of pieces fed until ``error``."""
    for count in range(1, most + 1):
        parser.feed(piece)
        if parser.error is not None:
            return count
    return most


def test_a_field_in_flight_is_refused_within_one_read():
    """1 MiB of one unfinished field in 64 KiB reads: 431 at the first read, so the
    parser (httptools keeps the unfinished field) holds at most one read past the head."""
    for start in (b"X-Big: ", b"X-Big", b"X-Big:"):  # value, name, whitespace
        parser = parse(b"GET / HTTP/1.1\r\nHost: h\r\n" + start)
        assert feed_until_refused(parser, (b" " if start == b"X-Big:" else b"a") * 65536, 16) == 1
        assert parser.error.status == 431 and not parser.requests


def test_a_request_line_in_flight_is_refused_within_one_read():
    for start, filler in ((b"GET /", b"a"), (b"GET", b" ")):  # request-target, whitespace
        parser = parse(start)
        assert feed_until_refused(parser, filler * 65536, 16) == 1
        assert parser.error.status == 414 and not parser.requests


def test_a_line_in_flight_is_refused_at_the_first_byte_past_its_bound():
    """The buffered line never exceeds its bound (limit + 4 for a field line, + 64 for
    the request line): fed byte by byte, the refusal comes with the first byte past it."""
    field = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: "
    line = b"GET" + b" " * 10  # whitespace: the request-target has its own check
    for start, bound, status in ((field, 512 + 4, 431), (line, 1024 + 64, 414)):
        parser = parse(start)
        in_line = len(start) - start.rfind(b"\n") - 1
        fed = feed_until_refused(parser, b" " if status == 414 else b"a", 2000)
        assert in_line + fed == bound + 1 and parser.error.status == status


CHUNKED = b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_trailer_field_in_flight_is_refused_within_one_read():
    """An unfinished trailer field (RFC 9112 §7.1.2) in 64 KiB reads: 431 at the
    first read, as a header field in flight; httptools would keep it whole."""
    for start in (b"3\r\nabc\r\n0\r\nX-Trailer: ", b"0\r\nX-T: 1\r\nX-Trailer"):
        parser = parse(CHUNKED + start)
        assert feed_until_refused(parser, b"a" * 65536, 16) == 1
        assert parser.error.status == 431
        assert not parser.requests[0].complete  # its reader (wsgi.input) sees the error


def test_a_chunk_extension_in_flight_is_refused_within_one_read():
    """Chunk extensions (RFC 9112 §7.1.1) are bounded like a field line: 400."""
    for start in (b"5;ext=", b"3\r\nabc\r\n5;a=b;c=", b"5"):
        parser = parse(CHUNKED + start)
        assert feed_until_refused(parser, (b"0" if start == b"5" else b"e") * 65536, 16) == 1
        assert parser.error.status == 400


def test_chunk_lines_at_the_bound_and_chunk_data_of_any_size_pass():
    """The bound is on lines, not on data: a 1 MiB chunk in 64 KiB reads, a chunk-size
    line and a trailer field of limit + 4 bytes, byte by byte."""
    extension = b";e=" + b"x" * (512 + 4 - len(b"5;e=") - 1)
    trailer = b"X-T: " + b"t" * (512 - len("X-T"))
    parser = parse(CHUNKED + b"100000\r\n", limits=Limits(1024, 20, 512, 0))  # any body size
    for _ in range(16):
        parser.feed(b"z" * 65536)
    for byte in b"\r\n5" + extension + b"\r\nhello\r\n0\r\n" + trailer + b"\r\n\r\n":
        parser.feed(bytes([byte]))
    assert parser.error is None
    request = parser.requests[0]
    assert request.complete and len(request.body) == 0x100000 + 5
    assert request.trailers == [("X-T", "t" * 509)]


def head_at_the_limits() -> tuple[bytes, list[tuple[str, str]]]:
    """A head exactly at LIMITS: a 1024-byte target and 20 fields of 512 bytes."""
    fields = [("Host", "h" * 508)] + [(f"X-{i:02}", "v" * 508) for i in range(19)]
    head = b"OPTIONS /" + b"t" * 1023 + b" HTTP/1.1\r\n"
    head += b"".join(f"{k}: {v}\r\n".encode() for k, v in fields) + b"\r\n"
    return head, fields


BEFORE_THE_HEAD = (
    b"",
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",  # a request: ends with LF
    # a body: ends with a body byte, where the bounds cannot measure within the read
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 600\r\n\r\n" + b"b" * 600,
)


def read_as_the_worker(parser: RequestParser, pieces: list[bytes]) -> list:
    """Feed ``pieces``, taking the requests after each, as the worker does (it then
    reads the body of a request it took); every request taken."""
    taken = []
    for piece in pieces:
        parser.feed(piece)
        taken += parser.requests
        parser.requests.clear()
    return taken


def test_a_head_at_the_limits_parses_at_every_split():
    """A first read ending inside what comes before (nothing, a request, a body), a
    second one ending at every byte after that, a third with the rest."""
    head, fields = head_at_the_limits()
    assert status_of(head.replace(b"/t", b"/tt")) == 414
    assert status_of(head.replace(b"v\r\n", b"vv\r\n", 1)) == 431
    for before in BEFORE_THE_HEAD:
        stream = before + head
        first = max(0, len(before) - 300)
        for cut in range(first, len(stream) + 1):
            parser = RequestParser(LIMITS)
            taken = read_as_the_worker(parser, [stream[:first], stream[first:cut], stream[cut:]])
            assert parser.error is None, (cut, parser.error)
            assert taken[-1].headers == fields and taken[-1].complete


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(BEFORE_THE_HEAD), st.lists(st.integers(0, 10**6), max_size=30))
def test_a_head_at_the_limits_parses_in_any_reads(before, cuts):
    head, fields = head_at_the_limits()
    parser = RequestParser(LIMITS)
    taken = read_as_the_worker(parser, splits(before + head, cuts))
    assert parser.error is None
    assert taken[-1].headers == fields and taken[-1].complete


def test_requests_before_an_error_are_kept():
    parser = parse(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET /bad HTTP/1.1\r\n\r\n")
    assert [r.path for r in parser.requests] == [b"/ok"]
    assert parser.error.status == 400
    parser.feed(b"GET /ignored HTTP/1.1\r\nHost: h\r\n\r\n")  # nothing parsed after an error
    assert len(parser.requests) == 1


def test_a_request_line_with_extra_spaces_is_refused_at_every_split():
    """RFC 9112 §3: method SP request-target SP HTTP-version; llhttp alone skips
    the extra spaces. Checked on the wire, behind a pipelined request and a body,
    whatever the reads."""
    good = b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nGET\r\n\r\n"
    for bad in (b"GET  /b HTTP/1.1\r\nHost: h\r\n\r\n", b"GET /b  HTTP/1.1\r\nHost: h\r\n\r\n"):
        stream = good + bad
        for cut in range(1, len(stream)):
            parser = parse(stream[:cut], stream[cut:])
            assert [r.path for r in parser.requests] == [b"/a"], cut
            assert parser.error is not None and parser.error.status == 400, cut
        one_byte_reads = parse(*(stream[i : i + 1] for i in range(len(stream))))
        assert one_byte_reads.error is not None and one_byte_reads.error.status == 400
    # the same requests with single spaces, in one-byte reads: all parsed
    fine = good + b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
    parser = parse(*(fine[i : i + 1] for i in range(len(fine))))
    assert parser.error is None and [r.path for r in parser.requests] == [b"/a", b"/b"]


def test_version_and_method_refusals():
    assert status_of(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n") == 505
    assert status_of(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") == 505
    assert status_of(b"GET / HTTP/1.2\r\nHost: h\r\n\r\n") == 505
    assert status_of(b"CONNECT h:1 HTTP/1.1\r\nHost: h:1\r\n\r\n") == 501


def test_transfer_codings():
    """400 when chunked is not the final coding (RFC 9112 §6.3), 501 for a coding
    before a final chunked (RFC 9112 §6.1); field lines combine (RFC 9110 §5.3)."""
    head = b"POST / HTTP/1.1\r\nHost: h\r\n"
    cases = {
        b"gzip": 400,
        b"identity": 400,
        b"chunked, gzip": 400,
        b"chunked;q=1": 400,
        b"gzip, identity": 400,
        b"gzip, chunked": 501,
        b"foo,, Chunked": 501,
        b"gzip\r\nTransfer-Encoding: chunked": 501,
        b"chunked\r\nTransfer-Encoding: gzip": 400,
        b"Chunked": None,
    }
    for coding, status in cases.items():
        raw = head + b"Transfer-Encoding: " + coding + b"\r\n\r\n0\r\n\r\n"
        parser = parse(raw)
        assert (parser.error.status if parser.error else None) == status, coding
        assert [r.chunked for r in parser.requests] == ([] if status else [True])


def test_response_head_and_helpers():
    head = response_head("200 OK", "Content-Length: 0\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nDate: ")
    assert head.endswith(b"\r\nServer: wsgistack\r\n\r\n")
    assert http_date().endswith(b" GMT") and len(http_date()) == 29
    assert reason_phrase(404) == "Not Found" and reason_phrase(799) == ""
    assert [bodiless("GET", s) for s in (100, 200, 204, 304)] == [True, False, True, True]
    assert bodiless("HEAD", 200)
    refusal = error_response(HttpError(431, "x"))
    assert refusal.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"\r\nConnection: close\r\n" in refusal


# -- property-based --------------------------------------------------------------------

TOKEN = st.text("abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
VALUE = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=30)
BODY = st.binary(max_size=3000)


@st.composite
def message(draw) -> tuple[bytes, bytes]:
    """A valid request (Content-Length or chunked with random chunk sizes) and its body."""
    body = draw(BODY)
    path = "/" + draw(TOKEN)
    headers = draw(st.lists(st.tuples(TOKEN.map(lambda t: "X-" + t), VALUE), max_size=5))
    head = f"POST {path} HTTP/1.1\r\nHost: h\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    if draw(st.booleans()):
        return (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body, body
    sizes = draw(st.lists(st.integers(1, 700), max_size=20))
    out, rest = b"", body
    for size in sizes:
        if not rest:
            break
        piece, rest = rest[:size], rest[size:]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    if rest:
        out += b"%X\r\n%s\r\n" % (len(rest), rest)  # upper-case hex is valid too
    out += b"0\r\n\r\n"
    return (head + "Transfer-Encoding: chunked\r\n\r\n").encode() + out, body


def splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    pieces, last = [], 0
    for point in points:
        pieces.append(data[last:point])
        last = point
    pieces.append(data[last:])
    return pieces


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(message(), min_size=1, max_size=4), st.lists(st.integers(0, 10**6), max_size=30))
def test_any_split_of_a_stream_yields_the_same_requests(messages, cuts):
    stream = b"".join(raw for raw, _ in messages)
    whole = parse(stream, limits=Limits(0, 0, 0, 0))
    pieces = parse(*splits(stream, cuts), limits=Limits(0, 0, 0, 0))
    for parser in (whole, pieces):
        assert parser.error is None
        assert [bytes(r.body) for r in parser.requests] == [body for _, body in messages]
        assert all(r.complete for r in parser.requests)
    assert [r.headers for r in whole.requests] == [r.headers for r in pieces.requests]


@settings(max_examples=200, deadline=None)
@given(message(), st.binary(min_size=1, max_size=200))
def test_body_framing_never_reads_past_the_message_end(msg, following):
    """Whatever follows a message is the next message, never part of its body."""
    raw, body = msg
    parser = parse(raw + b"GET /next HTTP/1.1\r\nHost: h\r\n\r\n", limits=Limits(0, 0, 0, 0))
    assert bytes(parser.requests[0].body) == body
    assert parser.requests[1].path == b"/next"
    parser = parse(raw, following, limits=Limits(0, 0, 0, 0))  # junk after: body intact
    assert bytes(parser.requests[0].body) == body


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6))
def test_random_junk_never_raises_out_of_feed(pieces):
    parser = RequestParser(LIMITS)
    for piece in pieces:
        parser.feed(piece)  # must not raise
    assert parser.error is None or parser.error.status in (400, 413, 414, 431, 501, 505)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([b"\r", b"\n", b"\x00", b" :", b"\x7f"]))
def test_junk_inside_a_head_is_refused_not_raised(junk, bad):
    """A bare CR or LF, a NUL, a DEL or whitespace before the colon in a field name:
    always 400, whatever follows, and no request."""
    parser = RequestParser(LIMITS)
    parser.feed(b"GET / HTTP/1.1\r\nHost: h\r\nX-A" + bad + junk + b"\r\n\r\n")
    assert parser.error is not None and parser.error.status == 400, parser.error
    assert not parser.requests


def test_singleton_fields_with_two_different_values_are_refused():
    """RFC 9110 §5.3: a field that is not a list cannot be combined: 400; the same
    value twice is one value."""
    two = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\n"
    assert status_of(two) == 400
    same = b"GET / HTTP/1.1\r\nHost: h\r\nContent-Type: a/b\r\nContent-Type: a/b\r\n\r\n"
    assert status_of(same) is None


def test_fields_a_trailer_must_not_carry_are_dropped():
    """RFC 9110 §6.5.1: framing, routing and authentication fields in a trailer
    section never reach the request; the others are its trailers."""
    raw = CHUNKED + b"0\r\nHost: evil\r\nAuthorization: x\r\nX-T: 1\r\n\r\n"  # llhttp: CL is a 400
    parser = parse(raw)
    assert parser.error is None and parser.requests[0].trailers == [("X-T", "1")]


def test_an_upgrade_request_with_a_body_is_processed_body_included():
    """RFC 9110 §7.8: a server that does not upgrade processes the request as if
    Upgrade were absent, body included (llhttp stops at the head); then closes."""
    upgrade = b"Host: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    parser = parse(b"POST / HTTP/1.1\r\n" + upgrade + b"Content-Length: 5\r\n\r\nhel")
    request = parser.requests[0]
    assert not request.complete and bytes(request.body) == b"hel"
    parser.feed(b"lo")
    assert request.complete and bytes(request.body) == b"hello" and not request.keep_alive
    chunked = b"POST / HTTP/1.1\r\n" + upgrade + b"Transfer-Encoding: chunked\r\n\r\n"
    parser = parse(chunked + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    assert parser.requests[0].complete and bytes(parser.requests[0].body) == b"abcde"
    parser = parse(chunked + b"5;ext=")  # the body's own lines keep their bounds
    assert feed_until_refused(parser, b"e" * 65536, 4) == 1 and parser.error.status == 400
