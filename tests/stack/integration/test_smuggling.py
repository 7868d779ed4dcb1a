"""Request smuggling over HTTP/1.1, sent byte for byte to nginx (TLS) and
straight to our server on its internal port (from inside the app container).

Each attack is a POST /api/echo carrying `X-Probe: attack-<id>` whose framing
is ambiguous (CL.TE, TE.CL, obfuscated Transfer-Encoding, duplicate
Content-Length, obs-fold, bare LF or CR, chunk-size tricks, oversized chunk
extensions, an HTTP/2 preface or h2c upgrade); where a party could read its
body as a second request, that request is `GET /api/status?code=418`. A
follow-up `GET /api/echo` with `X-Probe: follow-<id>` and `Connection: close`
is sent on the same connection right behind it. Pass, for every payload and
both hops:

* what comes back is a clean sequence of HTTP/1.1 responses;
* the first refuses the attack (400, 501, ...) or is the app's echo of it
  (normalised: the hop read it one way, and nginx re-frames every request it
  passes on with a Content-Length, so nginx and the server cannot disagree);
* after it come, in order, at most the hidden request's 418 (when the hop
  read the attack's end there, the rest is the client's next pipelined
  request, answered in its turn) and the follow-up's own echo, which must come
  when the attack was answered 2xx without closing (else the follow-up's bytes
  were taken as a body: a desync);
* the app ran the hidden request exactly as often as a client saw its 418
  (nothing ran unseen, no response went to another request), and requests on
  new connections afterwards get their own responses (nothing poisoned
  nginx's keep-alive connections to the app).

nginx reads some lenient framings our server refuses (bare LF line ends, LF
after a chunk size, a space after it, a Content-Length trailer, which it
ignores, HTTP/1.10); the server, which nginx only ever sends re-framed
requests, refuses them all.
"""

from __future__ import annotations

import pytest

from tests.support import wait_until
from tests.support.rawhttp import REFUSED, exchange_in_container, parse_responses, request

pytestmark = pytest.mark.integration

HIDDEN = b"GET /api/status?code=418 HTTP/1.1\r\nHost: localhost\r\n\r\n"


def _attack(name: str, headers: bytes, body: bytes, *, line_end: bytes = b"\r\n") -> bytes:
    """POST /api/echo with the given raw header lines (CRLF-separated) and body."""
    head = b"POST /api/echo HTTP/1.1\r\nHost: localhost\r\nX-Probe: attack-" + name.encode()
    return head + b"\r\n" + headers + line_end + line_end + body


def _cl(body: bytes) -> bytes:
    return b"Content-Length: %d" % len(body)


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data)


# CL.TE: by Content-Length the body is all of it; by chunked it ends at "0",
# leaving HIDDEN as a second request.
CL_TE_BODY = b"0\r\n\r\n" + HIDDEN
# TE.CL: by chunked the body is one chunk holding HIDDEN; by Content-Length: 4
# it is "40\r\n" and HIDDEN follows as a request.
TE_CL_BODY = _chunked(HIDDEN)
# Obfuscated Transfer-Encoding headers: a party that honours one and a party
# that ignores it disagree on where the body ends (TE.TE), with CL.TE's body.
TE_OBFUSCATIONS = {
    "te-xchunked": b"Transfer-Encoding: xchunked",
    "te-space-before-colon": b"Transfer-Encoding : chunked",
    "te-duplicate": b"Transfer-Encoding: chunked\r\nTransfer-Encoding: x",
    "te-tab": b"Transfer-Encoding:\tchunked",
    "te-vertical-tab": b"Transfer-Encoding:\x0bchunked",
    "te-list-chunked-identity": b"Transfer-Encoding: chunked, identity",
    "te-list-identity-chunked": b"Transfer-Encoding: identity, chunked",
    "te-quoted": b'Transfer-Encoding: "chunked"',
    "te-upper-case": b"Transfer-Encoding: CHUNKED",
    "te-underscore": b"Transfer_Encoding: chunked",
    "te-obs-fold": b"X-Fold: a\r\n Transfer-Encoding: chunked",
    "te-bare-lf": b"X-Lf: a\nTransfer-Encoding: chunked",
    "te-bare-cr": b"X-Cr: a\rTransfer-Encoding: chunked",
    "te-trailing-junk": b"Transfer-Encoding: chunked;x",
}

PAYLOADS: dict[str, bytes] = {
    "cl-te": _attack("cl-te", _cl(CL_TE_BODY) + b"\r\nTransfer-Encoding: chunked", CL_TE_BODY),
    "te-cl": _attack("te-cl", b"Transfer-Encoding: chunked\r\nContent-Length: 4", TE_CL_BODY),
    **{
        name: _attack(name, header + b"\r\n" + _cl(CL_TE_BODY), CL_TE_BODY)
        for name, header in TE_OBFUSCATIONS.items()
    },
    "cl-duplicate": _attack("cl-duplicate", b"Content-Length: 0\r\n" + _cl(HIDDEN), HIDDEN),
    "cl-list": _attack("cl-list", b"Content-Length: 0, %d" % len(HIDDEN), HIDDEN),
    "cl-plus-sign": _attack("cl-plus-sign", b"Content-Length: +%d" % len(HIDDEN), HIDDEN),
    "cl-hex": _attack("cl-hex", b"Content-Length: 0x%x" % len(HIDDEN), HIDDEN),
    "cl-obs-fold": _attack("cl-obs-fold", b"Content-Length: 0\r\n %d" % len(HIDDEN), HIDDEN),
    "cl-space-before-colon": _attack(
        "cl-space-before-colon", b"Content-Length : %d" % len(HIDDEN), HIDDEN
    ),
    "obs-fold-benign": _attack("obs-fold-benign", b"X-Fold: a\r\n b\r\nContent-Length: 0", b""),
    "bare-lf-everywhere": request(
        "POST", "/api/echo", [("X-Probe", "attack-bare-lf-everywhere"), ("Content-Length", "0")]
    ).replace(b"\r\n", b"\n"),
    "bare-cr-line-end": _attack("bare-cr-line-end", b"Content-Length: 0", b"", line_end=b"\r"),
    "chunk-size-hex-prefix": _attack(
        "chunk-size-hex-prefix", b"Transfer-Encoding: chunked", b"0x5\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-plus": _attack(
        "chunk-size-plus", b"Transfer-Encoding: chunked", b"+5\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-negative": _attack(
        "chunk-size-negative", b"Transfer-Encoding: chunked", b"-1\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-leading-space": _attack(
        "chunk-size-leading-space", b"Transfer-Encoding: chunked", b" 5\r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-trailing-space": _attack(
        "chunk-size-trailing-space", b"Transfer-Encoding: chunked", b"5 \r\nhello\r\n0\r\n\r\n"
    ),
    "chunk-size-overflow": _attack(
        "chunk-size-overflow",
        b"Transfer-Encoding: chunked",
        b"10000000000000005\r\nhello\r\n0\r\n\r\n" + HIDDEN,
    ),
    "chunk-data-too-long": _attack(
        "chunk-data-too-long", b"Transfer-Encoding: chunked", b"5\r\nhelloXX\r\n0\r\n\r\n"
    ),
    "chunk-lf-only": _attack(
        "chunk-lf-only", b"Transfer-Encoding: chunked", b"5\nhello\n0\n\n" + HIDDEN
    ),
    "chunk-ext-quoted-crlf": _attack(
        "chunk-ext-quoted-crlf",
        b"Transfer-Encoding: chunked",
        b'5;x="a\r\n0\r\n\r\n' + HIDDEN + b'"\r\nhello\r\n0\r\n\r\n',
    ),
    "chunk-ext-oversized": _attack(
        "chunk-ext-oversized",
        b"Transfer-Encoding: chunked",
        b"5;" + b"x" * 65536 + b"\r\nhello\r\n0\r\n\r\n",
    ),
    "chunk-ext-many": _attack(
        "chunk-ext-many",
        b"Transfer-Encoding: chunked",
        b"".join(b"1;a=b\r\nx\r\n" for _ in range(2000)) + b"0\r\n\r\n",
    ),
    "chunk-trailer-smuggles-cl": _attack(
        "chunk-trailer-smuggles-cl",
        b"Transfer-Encoding: chunked",
        b"5\r\nhello\r\n0\r\nContent-Length: %d\r\n\r\n" % len(HIDDEN) + HIDDEN,
    ),
    "h2-preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    "h2c-upgrade": _attack(
        "h2c-upgrade",
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        b"HTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Length: 0",
        b"",
    ),
    "host-duplicate": _attack("host-duplicate", b"Host: evil.example\r\nContent-Length: 0", b""),
    "absolute-form-other-host": b"POST http://evil.example/api/echo HTTP/1.1\r\n"
    b"Host: localhost\r\nX-Probe: attack-absolute-form-other-host\r\nContent-Length: 0\r\n\r\n",
    "http-version-1.10": b"POST /api/echo HTTP/1.10\r\nHost: localhost\r\n"
    b"X-Probe: attack-http-version-1.10\r\nContent-Length: 0\r\n\r\n",
}


def _follow_up(name: str) -> bytes:
    return request("GET", "/api/echo", [("X-Probe", f"follow-{name}"), ("Connection", "close")])


def _probe(response) -> str | None:
    """The X-Probe the app saw, when ``response`` is its echo."""
    if response.status != 200:
        return None
    try:
        return response.json()["headers"].get("X-Probe")
    except (ValueError, KeyError, AttributeError):
        return None


def judge(name: str, data: bytes, closed: bool) -> tuple[list[str], int]:
    """What is wrong with the answer to PAYLOADS[name] + its follow-up (nothing:
    an empty list), and how many times the hidden request was answered."""
    responses, problem = parse_responses(data, closed)
    problems = [problem] if problem else []
    if not responses:
        if not closed:
            problems.append("no response and the connection left open")
        return problems, 0
    first, rest = responses[0], responses[1:]
    normalised = 200 <= first.status < 300
    if normalised and _probe(first) != f"attack-{name}":
        problems.append(f"first response is not the attack's echo: {first.status} {first.body!r}")
    elif not normalised and first.status not in REFUSED:
        problems.append(f"first response {first.status} neither refuses nor serves the attack")
    hidden = 0
    if normalised and rest and rest[0].status == 418:
        hidden, rest = 1, rest[1:]  # the client's next pipelined request, in its turn
    if len(rest) > 1:
        problems.append(f"{len(rest)} responses after the attack's: a request was smuggled")
    for response in rest:
        if _probe(response) != f"follow-{name}":
            problems.append(f"the follow-up got a response not its own: {response.status}")
    closes = "close" in (first.header("connection") or "").lower()
    if normalised and not rest and not closes:
        problems.append("the attack was served but the follow-up got no response (desync)")
    return problems, hidden


@pytest.fixture(scope="module")
def hidden_audit(stack):
    """The app's count of hidden-request answers before the payloads, and how
    many of them the clients saw (the tests add to "seen")."""
    return {"before": stack.request_count("GET", 418), "seen": 0}


# nginx takes the host of an absolute-form target over the Host header (RFC
# 9112 §3.2.2); one that is not SERVER_NAME's gets the default server's 444:
# the connection closed without a response, nothing served.
CLOSED_BY_NGINX = {"absolute-form-other-host"}


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_through_nginx(stack, hidden_audit, name):
    data, closed = stack.exchange(PAYLOADS[name] + _follow_up(name))
    if name in CLOSED_BY_NGINX:
        assert (data, closed) == (b"", True), data[:600]
    else:
        problems, hidden = judge(name, data, closed)
        hidden_audit["seen"] += hidden
        assert problems == [], data[:600]
    # New connections, through nginx's keep-alive pool to the app, are served right.
    for attempt in range(2):
        marker = f"after-{name}-{attempt}"
        data, closed = stack.exchange(
            request("GET", "/api/echo", [("X-Probe", marker), ("Connection", "close")])
        )
        responses, problem = parse_responses(data, closed)
        assert problem is None and len(responses) == 1, data[:600]
        assert _probe(responses[0]) == marker


@pytest.fixture(scope="module")
def direct_results(stack, hidden_audit):
    """Every payload + follow-up, straight to the server inside the app container."""
    payloads = [PAYLOADS[name] + _follow_up(name) for name in PAYLOADS]
    results = exchange_in_container(stack.container("app"), payloads)
    return dict(zip(PAYLOADS, results, strict=True))


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_payload_straight_to_the_server(direct_results, hidden_audit, name):
    data, closed = direct_results[name]
    problems, hidden = judge(name, data, closed)
    hidden_audit["seen"] += hidden
    assert problems == [], data[:600]


def test_the_app_ran_no_request_a_client_did_not_see_answered(stack, hidden_audit, report):
    """Runs after the payloads above (file order)."""
    expected = hidden_audit["before"] + hidden_audit["seen"]
    ran = wait_until(lambda: stack.request_count("GET", 418) == expected, timeout=5, interval=0.2)
    assert ran, (stack.request_count("GET", 418), expected)
    report(
        f"smuggling: {len(PAYLOADS)} payloads x 2 hops; hidden request answered in turn "
        f"{hidden_audit['seen']} times, run unseen 0 times"
    )


# -- the judge itself, on made-up answers (no stack needed) -------------------


def _echo(probe: str, close: bool = False) -> bytes:
    body = b'{"headers": {"X-Probe": "%s"}}' % probe.encode()
    connection = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), connection, body)


NOT_FOUND = b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}"
BAD = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    ("data", "closed", "problem"),
    [
        (_echo("attack-x") + NOT_FOUND, True, "not its own"),
        (_echo("attack-x") + _echo("follow-x") + _echo("follow-x"), True, "smuggled"),
        (_echo("attack-x"), False, "desync"),
        (_echo("attack-y") + _echo("follow-x"), True, "not the attack's echo"),
        (b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\n\r\n", True, "neither refuses"),
        (BAD + b"HTTP/1.1 200 OK\r\n", True, "bytes after a closing response"),
        (b"", False, "no response"),
    ],
)
def test_judge_catches(data, closed, problem):
    problems, _ = judge("x", data, closed)
    assert any(problem in p for p in problems), problems


@pytest.mark.parametrize(
    "data",
    [
        BAD,
        _echo("attack-x") + _echo("follow-x", close=True),
        _echo("attack-x", close=True),
        _echo("attack-x") + b"HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n" + _echo("follow-x"),
    ],
)
def test_judge_accepts(data):
    assert judge("x", data, True)[0] == []
