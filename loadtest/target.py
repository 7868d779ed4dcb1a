"""Where the load goes: the local stack's nginx, or any base URL (``TARGET=``).

Without ``TARGET`` the generator joins the stack's frontend network and loads
nginx by its service name (``https://proxy:8443``), and the run reads the
stack's Prometheus and Docker stats beside what the client saw. With
``TARGET=https://staging.example.org`` the generator runs with the host's
network (so a loopback target, e.g. a second stack's published port, works
too) and the client's figures are all there is: the stack, its Prometheus and
its engine are not touched.

The generators (h2load, wrk) do not verify TLS certificates, so before the
load starts the target is asked once with verification on (``--insecure``
skips it): a run never loads a host that cannot prove its name. A target
whose host is not a loopback address is someone's real server: offering it
more than a ceiling of requests per second (``--rate-ceiling``; RATE=max, the
closed loop, has no ceiling at all) needs ``--confirm-rate``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

LOCAL_STACK = "https://proxy:8443"  # nginx on the stack's frontend network (compose service)
RATE_CEILING = 100.0  # requests/s offered to a non-loopback target without --confirm-rate
PREFLIGHT_TIMEOUT = 10.0  # seconds for the target's first answer
SCHEMES = ("http", "https")
ENGINE = "target"  # the report's name for what answers at a TARGET= URL (its engine is unknown)


class TargetError(ValueError):
    """A TARGET that is not an HTTP(S) base URL, fails its TLS check, does not answer, or
    would get more load than allowed without confirmation; the message names it."""


@dataclass(frozen=True)
class Target:
    """Where requests go: ``base`` + a scenario request's path (origin-form).

    ``external``: True for a TARGET= URL (no Prometheus, no Docker stats, the
    generator on the host's network), False for the local stack's nginx.
    ``loopback``: the URL's host is this machine (localhost, 127.0.0.0/8, ::1).
    ``verify``: TLS certificates are checked before the run (``--insecure``: not).
    """

    base: str
    external: bool
    loopback: bool
    verify: bool = True

    @property
    def scheme(self) -> str:
        return urlsplit(self.base).scheme

    def url(self, path: str) -> str:
        """The absolute URL of a request ``path`` (starting with /) at this target."""
        return self.base + path


STACK = Target(LOCAL_STACK, external=False, loopback=False)


def parse(text: str, insecure: bool = False) -> Target:
    """A Target from ``TARGET=``'s value: an http:// or https:// URL with a host, an
    optional port and an optional path prefix (the scenario's paths are appended);
    raises TargetError naming what is wrong."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"TARGET {text!r} is not a URL: {exc}") from None
    if parts.scheme not in SCHEMES:
        raise TargetError(
            f"TARGET must be an http:// or https:// URL, got {text!r}"
            + (f" (scheme {parts.scheme}: not HTTP)" if parts.scheme else "")
        )
    if not parts.hostname:
        raise TargetError(f"TARGET {text!r} has no host")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise TargetError(
            f"TARGET {text!r}: give scheme://host[:port][/prefix] only (no query, fragment "
            "or credentials)"
        )
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = host + (f":{port}" if port is not None else "")
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    return Target(base, external=True, loopback=is_loopback(parts.hostname), verify=not insecure)


def is_loopback(host: str) -> bool:
    """True when ``host`` names this machine: ``localhost`` or a loopback address (every
    address it resolves to, for a name)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def check_rate(target: Target, peak_rate: float | None, ceiling: float, confirmed: bool) -> None:
    """Refuse a load above ``ceiling`` requests/s on a non-loopback target unless
    ``confirmed``; ``peak_rate`` None is the closed loop (as fast as the target answers).
    Raises TargetError."""
    if not target.external or target.loopback or confirmed:
        return
    if peak_rate is None:
        offered = "the closed loop (RATE=max: as fast as it answers)"
    elif peak_rate > ceiling:
        offered = f"{peak_rate:g} requests/s"
    else:
        return
    raise TargetError(
        f"{target.base} is not this machine and would get {offered}, above the ceiling of "
        f"{ceiling:g} requests/s: confirm with --confirm-rate (make load CONFIRM=1), or "
        "raise --rate-ceiling (RATE_CEILING=)"
    )


def preflight(target: Target, timeout: float = PREFLIGHT_TIMEOUT) -> int:
    """Ask the target once (GET of its base URL) and return the status it answered.

    Any HTTP answer will do (a 404 at the base is fine): what is checked is that it
    answers HTTP and, for https with ``target.verify``, proves its name with a
    certificate this machine trusts. Raises TargetError naming the failure.
    """
    try:
        with httpx.Client(verify=target.verify, timeout=timeout) as client:
            return client.get(target.url("/")).status_code
    except httpx.ConnectError as exc:
        reason = str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in reason or "certificate" in reason.lower():
            raise TargetError(
                f"TARGET {target.base}: TLS certificate verification failed ({reason}); "
                "--insecure (make load INSECURE=1) skips the check"
            ) from None
        raise TargetError(f"TARGET {target.base} does not answer: {reason}") from None
    except httpx.HTTPError as exc:
        raise TargetError(f"TARGET {target.base} does not answer HTTP: {exc}") from None
