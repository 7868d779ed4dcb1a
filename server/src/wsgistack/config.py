"""Configuration: one ``Config`` built from four sources, highest first.

    command-line flags  >  environment  >  config file (``-c``)  >  defaults

``SETTINGS`` is the one table of the settings: each one's flags, validator,
default and help; ``Config``'s defaults, ``--help`` and the docs' settings page
come from it. Flag names follow gunicorn's where the meaning is the same. Every
setting NAME also reads the environment variable ``WSGISTACK_NAME`` (upper
case; as uvicorn's ``UVICORN_*``), and ``workers`` also reads
``WEB_CONCURRENCY`` (the Heroku/gunicorn convention); the app is the
positional APP_MODULE or the environment variable ``APP_MODULE``. The names of
wsgistack 0.1, ``SERVER_NAME``, are refused with a line naming the new one.
The config file is Python; its top-level names are settings
(``workers = 4``, ``bind = ["0.0.0.0:8000"]``).

A bad value raises ``ConfigError`` whose message is one line naming the setting;
``__main__`` prints it and exits 2.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import ipaddress
import os
import runpy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, NoReturn

from . import SERVER_SOFTWARE, __version__

ENV_PREFIX = "WSGISTACK_"
# Server hooks set in a -c config file, with gunicorn's names and arguments:
# (name, number of arguments, their names, when it runs). ``server`` is the
# Arbiter, ``worker`` the Worker, ``req`` the parsed Request, ``resp`` the Response.
HOOKS = (
    ("on_starting", 1, "server", "in the master, before it binds"),
    ("when_ready", 1, "server", "in the master, once it listens"),
    ("post_fork", 2, "server, worker", "in a new worker, right after fork"),
    ("post_worker_init", 1, "worker", "in a worker, once it has imported the app"),
    ("worker_exit", 2, "server, worker", "in a worker, as it exits"),
    ("on_exit", 1, "server", "in the master, as it exits"),
    ("pre_request", 2, "worker, req", "in a worker, before the app runs a request"),
    ("post_request", 4, "worker, req, environ, resp", "after a request's response"),
)
_OLD_ENV_PREFIX = "SERVER_"  # wsgistack 0.1's, refused


Hook = Callable[..., object] | None


class ConfigError(Exception):
    """A setting has a bad value; ``str(err)`` is one line naming it."""


def _int_at_least(low: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"must be an integer, got {value!r}") from None
        if number < low:
            raise ValueError(f"must be >= {low}, got {number}")
        return number

    return parse


def _seconds(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"must be a number of seconds, got {value!r}") from None
    if number < 0:
        raise ValueError(f"must be >= 0 seconds, got {number}")
    return number


def _bind(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else list(value)
    if not items:
        raise ValueError("needs at least one address")
    for item in items:
        if str(item).startswith("unix:"):
            if len(str(item)) == len("unix:"):
                raise ValueError(f"unix: needs a path, got {item!r}")
            continue
        host, sep, port = str(item).rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"must be HOST:PORT or unix:PATH, got {item!r}")
    return [str(item) for item in items]


def _octal_mode(value: Any) -> int:
    """A file mode: a string of octal digits ("660", "0660", "0o660" → 0o660), as on the
    command line and in the environment, or a Python int (from a ``-c`` file), which is
    the mode itself, as for ``os.chmod``: ``chmod_socket = 0o660``.

    Raises ValueError for anything else: an int above 0o777 (``660`` would be 0o1224,
    so it is refused, naming the two ways to write it), ``"999"``, ``True``.
    """
    problem = f"must be an octal file mode like 660 or 0o660, got {value!r}"
    if isinstance(value, bool):
        raise ValueError(problem)
    if isinstance(value, int):
        if 0 <= value <= 0o777:
            return value
        if value < 0:
            raise ValueError(f"must be between 0 and 0o777, got {value!r}")
        raise ValueError(
            f"an int is the mode itself: write 0o{value} (a Python octal literal) or "
            f"'{value}', got {value!r}"
        )
    try:
        mode = int(str(value), 8)
    except ValueError:
        raise ValueError(problem) from None
    if not 0 <= mode <= 0o777:
        raise ValueError(f"must be between 000 and 777, got {value!r}")
    return mode


def _script_name(value: Any) -> str:
    path = str(value).rstrip("/")
    if path and not path.startswith("/"):
        raise ValueError(f"must start with '/', got {value!r}")
    return path


def _ip_list(value: Any) -> list[str]:
    """Parse 'ip,ip/cidr,…' or '*' (trust every peer)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [str(item).strip() for item in items if str(item).strip()]
    for item in items:
        if item != "*":
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"must be IP addresses, networks or '*', got {item!r}") from None
    return items


def _log_level(value: Any) -> str:
    level = str(value).lower()
    if level not in ("debug", "info", "warning", "error", "critical"):
        raise ValueError(f"must be debug, info, warning, error or critical, got {value!r}")
    return level


@dataclass(frozen=True)
class AppSpec:
    """``APP_MODULE`` parsed: the module, the attribute path in it, and the
    literal arguments when the attribute is an application factory to call.

    ``myapp:app`` → ("myapp", ("app",), None); ``myapp:create_app()`` and
    ``myapp:create_app("prod", debug=False)`` → a call with those arguments,
    as gunicorn reads them (literals only: the spec is configuration, not code).
    """

    module: str
    attribute: tuple[str, ...]
    call: tuple[tuple[Any, ...], dict[str, Any]] | None = None


def parse_app_spec(value: str) -> AppSpec:
    """Parse ``MODULE[:NAME]`` or ``MODULE:FACTORY(literal args)``; NAME defaults
    to ``application``. Raises ValueError naming what is wrong."""
    module, sep, expression = value.partition(":")
    if (
        not module
        or (sep and not expression)
        or not all(part.isidentifier() for part in module.split("."))
    ):
        raise ValueError(f"must be MODULE:NAME or MODULE:FACTORY(...), got {value!r}")
    try:
        tree = ast.parse(expression or "application", mode="eval").body
    except SyntaxError:
        raise ValueError(f"{expression!r} is not a name or a call, in {value!r}") from None
    call = None
    if isinstance(tree, ast.Call):
        try:
            args = tuple(ast.literal_eval(arg) for arg in tree.args)
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in tree.keywords if kw.arg}
        except ValueError:
            raise ValueError(f"a factory's arguments must be literals, in {value!r}") from None
        if any(kw.arg is None for kw in tree.keywords):
            raise ValueError(f"no **kwargs in a factory call, in {value!r}")
        call, tree = (args, kwargs), tree.func
    attribute: list[str] = []
    while isinstance(tree, ast.Attribute):
        attribute.insert(0, tree.attr)
        tree = tree.value
    if not isinstance(tree, ast.Name):
        raise ValueError(f"{expression!r} is not a name or a call, in {value!r}")
    return AppSpec(module, (tree.id, *attribute), call)


def _app_module(value: Any) -> str:
    parse_app_spec(str(value))
    return str(value)


def _url_path(value: Any) -> str:
    path = str(value)
    if not path.startswith("/") or any(c in path for c in " ?#\r\n"):
        raise ValueError(f"must be a URL path starting with '/', got {value!r}")
    return path


def _path_list(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(item).strip() for item in items if str(item).strip()]


def _hook(name: str, arity: int) -> Callable[[Any], Callable[..., object] | None]:
    """The validator of a server hook: a callable taking ``arity`` arguments, or None."""

    def parse(value: Any) -> Callable[..., object] | None:
        if value is None:
            return None
        if not callable(value):
            raise ValueError(f"must be a function, got {value!r}")
        try:
            inspect.signature(value).bind(*range(arity))
        except TypeError:
            raise ValueError(f"must take {arity} argument(s), as gunicorn's {name}") from None
        except ValueError:  # no signature to inspect (a builtin): trust it
            pass
        return value  # type: ignore[no-any-return]

    return parse


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"must be true or false, got {value!r}")


def _text(value: Any) -> str:
    return str(value)


ACCESS_LOG_STYLES = ("json", "combined")


def _access_log_style(value: Any) -> str:
    style = str(value).lower()
    if style not in ACCESS_LOG_STYLES:
        raise ValueError(f"must be {' or '.join(ACCESS_LOG_STYLES)}, got {value!r}")
    return style


@dataclass(frozen=True)
class Setting:
    """How one setting is spelled on the command line and parsed.

    ``parse`` turns a value from any source (a str from a flag or the
    environment, any Python value from a config file) into the setting's type,
    raising ValueError with a message naming what it wanted.
    """

    name: str
    flags: tuple[str, ...]
    parse: Callable[[Any], Any]
    help: str
    metavar: str | None = None
    repeatable: bool = False
    switch: bool = False  # a flag without a value (store_true)
    default: Any = None  # the one place each default is written; lists as tuples
    shown_default: str | None = None  # how --help and the docs show it, when not str(default)

    @property
    def env(self) -> tuple[str, ...]:
        """The environment variables that set it, highest first (``WSGISTACK_<NAME>``)."""
        if self.name == "app":
            return ("APP_MODULE",)
        if not self.flags:  # a hook: config file only
            return ()
        own = ENV_PREFIX + self.name.upper()
        return (own, "WEB_CONCURRENCY") if self.name == "workers" else (own,)

    def describe_default(self) -> str:
        """The default as a person reads it: ``30`` (seconds), ``127.0.0.1,::1``, ``off``."""
        if self.shown_default is not None:
            return self.shown_default
        value = self.default
        if self.switch:
            return "off"
        if isinstance(value, tuple):
            return ",".join(value)
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "bind",
        ("-b", "--bind"),
        _bind,
        "address to listen on: HOST:PORT (IPv6: [::1]:8000) or unix:PATH; repeat for several",
        "ADDRESS",
        repeatable=True,
        default=("127.0.0.1:8000",),
    ),
    Setting(
        "workers",
        ("-w", "--workers"),
        _int_at_least(1),
        "number of worker processes",
        "INT",
        default=2,
    ),
    Setting(
        "threads",
        ("--threads",),
        _int_at_least(1),
        "threads per worker running the app; 1 runs it inline in the event loop",
        "INT",
        default=1,
    ),
    Setting(
        "worker_connections",
        ("--worker-connections",),
        _int_at_least(1),
        "the most client connections one worker keeps open; past it the worker stops "
        "accepting until one closes (gunicorn's worker_connections)",
        "INT",
        default=1000,
    ),
    Setting(
        "chmod_socket",
        ("--chmod-socket",),
        _octal_mode,
        "file mode of unix:PATH sockets, octal (uWSGI's name)",
        "MODE",
        default=0o660,
        shown_default="660",
    ),
    Setting(
        "reuse_port",
        ("--reuse-port",),
        _bool,
        "set SO_REUSEPORT on TCP listeners (several servers may bind the same port)",
        switch=True,
        default=False,
    ),
    Setting(
        "max_worker_memory",
        ("--max-worker-memory",),
        _int_at_least(0),
        "a worker whose resident memory (RSS) exceeds this many MiB finishes its requests "
        "and is replaced; 0 = never",
        "MIB",
        default=0,
    ),
    Setting(
        "script_name",
        ("--script-name",),
        _script_name,
        "the URL prefix the app is mounted at: PEP 3333's SCRIPT_NAME, removed from PATH_INFO",
        "PATH",
        default="",
        shown_default="'' (the root)",
    ),
    Setting(
        "backlog",
        ("--backlog",),
        _int_at_least(1),
        "listen(2) backlog: connections the kernel queues",
        "INT",
        default=2048,
    ),
    Setting(
        "timeout",
        ("-t", "--timeout"),
        _seconds,
        "a worker silent this long (seconds) is killed and replaced; 0 disables",
        "SECONDS",
        default=30.0,
    ),
    Setting(
        "graceful_timeout",
        ("--graceful-timeout",),
        _seconds,
        "on stop, seconds workers get to finish in-flight requests",
        "SECONDS",
        default=30.0,
    ),
    Setting(
        "keep_alive",
        ("--keep-alive",),
        _seconds,
        "seconds an idle persistent connection stays open; 0 disables keep-alive",
        "SECONDS",
        default=75.0,
    ),
    Setting(
        "client_timeout",
        ("--client-timeout",),
        _seconds,
        "seconds a send to or a receive from a client may wait without progress before "
        "that connection is closed (nginx's send_timeout and client_body_timeout); at "
        "most half --timeout, as the worker must beat meanwhile. A slow client that "
        "progresses is served whatever the time, and --timeout kills only a worker whose "
        "app is stuck",
        "SECONDS",
        default=30.0,
    ),
    Setting(
        "client_header_timeout",
        ("--client-header-timeout",),
        _seconds,
        "seconds a client gets to send a complete request head, else 408 and close "
        "(slow-client protection; nginx's directive of the same name)",
        "SECONDS",
        default=30.0,
    ),
    Setting(
        "limit_request_line",
        ("--limit-request-line",),
        _int_at_least(0),
        "maximum request-target length in bytes, else 414; 0 = unlimited",
        "BYTES",
        default=4094,
    ),
    Setting(
        "limit_request_fields",
        ("--limit-request-fields",),
        _int_at_least(0),
        "maximum number of header fields, else 431; 0 = unlimited",
        "INT",
        default=100,
    ),
    Setting(
        "limit_request_field_size",
        ("--limit-request-field_size",),
        _int_at_least(0),
        "maximum size of one header field (name + value) in bytes, else 431; 0 = unlimited",
        "BYTES",
        default=8190,
    ),
    Setting(
        "limit_request_body",
        ("--limit-request-body",),
        _int_at_least(0),
        "maximum request body in bytes, else 413; 0 = unlimited",
        "BYTES",
        default=16 * 1024 * 1024,
        shown_default="16777216 (16 MiB)",
    ),
    Setting(
        "forwarded_allow_ips",
        ("--forwarded-allow-ips",),
        _ip_list,
        "peers (IPs or networks, comma-separated, or '*') whose X-Forwarded-For and "
        "X-Forwarded-Proto are trusted",
        "IPS",
        default=("127.0.0.1", "::1"),
    ),
    Setting(
        "access_logfile",
        ("--access-logfile",),
        _text,
        "where access log lines go: a path, '-' for stdout; unset = no access log",
        "FILE",
        default=None,
        shown_default="none (no access log)",
    ),
    Setting(
        "access_log_style",
        ("--access-log-style",),
        _access_log_style,
        "access log line style: json (one object a line: time, remote_addr, method, uri, "
        "status, response_bytes, duration_seconds, request_id, ...) or combined (the "
        "Apache/nginx combined log format)",
        "STYLE",
        default="json",
    ),
    Setting(
        "errorlog",
        ("--error-logfile", "--log-file"),
        _text,
        "where the error log goes: a path, '-' for stderr",
        "FILE",
        default="-",
    ),
    Setting(
        "log_level",
        ("--log-level",),
        _log_level,
        "error log level: debug, info, warning, error, critical",
        "LEVEL",
        default="info",
    ),
    Setting(
        "max_requests",
        ("--max-requests",),
        _int_at_least(0),
        "a worker that has served this many requests is replaced gracefully; 0 = never",
        "INT",
        default=0,
    ),
    Setting(
        "max_requests_jitter",
        ("--max-requests-jitter",),
        _int_at_least(0),
        "add a random 0..N to each worker's max-requests so they don't recycle at once",
        "INT",
        default=0,
    ),
    Setting(
        "preload",
        ("--preload",),
        _bool,
        "import the app in the master before forking (less memory, faster boot; "
        "a reload then keeps the old code)",
        switch=True,
        default=False,
    ),
    Setting(
        "health_path",
        ("--health-path",),
        _url_path,
        "a path the server answers itself, before the app: 200 'ok' once the worker has "
        "imported the app (for load balancers and container healthchecks)",
        "PATH",
        default=None,
        shown_default="none",
    ),
    Setting(
        "reload",
        ("--reload",),
        _bool,
        "restart the workers gracefully when a .py file under the current directory "
        "(or a --reload-extra-file) changes (development; needs watchfiles: "
        "pip install 'wsgistack[reload]'); WATCHFILES_FORCE_POLLING=1 polls",
        switch=True,
        default=False,
    ),
    Setting(
        "reload_extra_files",
        ("--reload-extra-file",),
        _path_list,
        "another file (or folder) whose changes trigger --reload (templates, "
        "configuration); repeat for several",
        "FILE",
        repeatable=True,
        default=(),
        shown_default="none",
    ),
    *(
        Setting(
            name,
            (),
            _hook(name, arity),
            f"server hook (config file only), gunicorn's {name}({signature}): {meaning}",
            default=None,
            shown_default="none",
        )
        for name, arity, signature, meaning in HOOKS
    ),
    Setting(
        "app",
        (),
        _app_module,
        "the WSGI application: MODULE:NAME, or MODULE:FACTORY() / MODULE:FACTORY(args) "
        "to call an application factory with literal arguments",
        "APP_MODULE",
        default="",
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}


def parse(name: str, value: Any) -> Any:
    """``value`` checked and converted by setting ``name``'s validator, as the
    server reads it (for gunicorn.conf.py). Raises ValueError, KeyError."""
    return _BY_NAME[name].parse(value)


def default(name: str) -> Any:
    """The default of setting ``name``, as written once in ``SETTINGS``. KeyError if unknown."""
    value = _BY_NAME[name].default
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class Config:
    """The effective configuration every part of the server receives.

    Times are in seconds, sizes in bytes (``max_worker_memory`` in MiB); each
    setting's meaning, and what 0 does, is its help in ``SETTINGS``. ``source``
    maps a setting's name to where its value came from ("flag", "env NAME",
    "file PATH"; unset: the default).
    """

    app: str = default("app")
    bind: list[str] = field(default_factory=lambda: default("bind"))
    workers: int = default("workers")
    threads: int = default("threads")
    worker_connections: int = default("worker_connections")
    chmod_socket: int = default("chmod_socket")
    reuse_port: bool = default("reuse_port")
    max_worker_memory: int = default("max_worker_memory")
    script_name: str = default("script_name")
    backlog: int = default("backlog")
    timeout: float = default("timeout")
    graceful_timeout: float = default("graceful_timeout")
    keep_alive: float = default("keep_alive")
    client_timeout: float = default("client_timeout")
    client_header_timeout: float = default("client_header_timeout")
    limit_request_line: int = default("limit_request_line")
    limit_request_fields: int = default("limit_request_fields")
    limit_request_field_size: int = default("limit_request_field_size")
    limit_request_body: int = default("limit_request_body")
    forwarded_allow_ips: list[str] = field(default_factory=lambda: default("forwarded_allow_ips"))
    access_logfile: str | None = default("access_logfile")
    access_log_style: str = default("access_log_style")
    errorlog: str = default("errorlog")
    log_level: str = default("log_level")
    max_requests: int = default("max_requests")
    max_requests_jitter: int = default("max_requests_jitter")
    preload: bool = default("preload")
    health_path: str | None = default("health_path")
    reload: bool = default("reload")
    reload_extra_files: list[str] = field(default_factory=lambda: default("reload_extra_files"))
    on_starting: Hook = default("on_starting")
    when_ready: Hook = default("when_ready")
    post_fork: Hook = default("post_fork")
    post_worker_init: Hook = default("post_worker_init")
    worker_exit: Hook = default("worker_exit")
    on_exit: Hook = default("on_exit")
    pre_request: Hook = default("pre_request")
    post_request: Hook = default("post_request")
    source: dict[str, str] = field(default_factory=dict, compare=False)

    def describe(self) -> str:
        """One line: every setting with its value and where it came from."""
        parts = []
        for f in fields(self):
            if f.name != "source":
                origin = self.source.get(f.name, "default")
                value = getattr(self, f.name)
                if f.name == "chmod_socket":
                    shown = oct(value)
                elif callable(value):  # a hook: its name, not its address
                    shown = getattr(value, "__qualname__", repr(value))
                else:
                    shown = repr(value)
                parts.append(f"{f.name}={shown}({origin})")
        return "config: " + " ".join(parts)


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError (one line, exit 2) instead of printing its usage."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="wsgistack",
        description="wsgistack's pre-fork HTTP/1.1 WSGI server (PEP 3333). Every setting NAME "
        f"can also be set by the environment variable {ENV_PREFIX}NAME (e.g. "
        f"{ENV_PREFIX}THREADS) or in a Python config file (-c); flags win over the "
        "environment, which wins over the file.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument(
        "app",
        nargs="?",
        metavar="APP_MODULE",
        help="the WSGI application, MODULE:CALLABLE (e.g. wsgistack_demo.wsgi:application)",
    )
    for s in SETTINGS:
        text = f"{s.help}. Default {s.describe_default()}; env {', '.join(s.env)}"
        if s.switch:
            parser.add_argument(*s.flags, dest=s.name, help=text, action="store_true")
        elif s.flags:
            parser.add_argument(
                *s.flags,
                dest=s.name,
                help=text,
                metavar=s.metavar,
                action="append" if s.repeatable else "store",
            )
    parser.add_argument(
        "-c", "--config", metavar="FILE", help="Python file whose top-level names are settings"
    )
    parser.add_argument(
        "--check-config", action="store_true", help="validate the configuration, print it and exit"
    )
    parser.add_argument("--version", action="version", version=f"{SERVER_SOFTWARE} {__version__}")
    return parser


def _refuse_old_names(environ: Mapping[str, str]) -> None:
    """ConfigError for a wsgistack 0.1 variable (``SERVER_THREADS``) that is set."""
    for s in SETTINGS:
        old = _OLD_ENV_PREFIX + s.name.upper()
        if s.name != "app" and environ.get(old, "") != "":
            raise ConfigError(f"{old} is no longer read: rename it {s.env[0]}")
    if environ.get(_OLD_ENV_PREFIX + "CONFIG", "") != "":
        raise ConfigError(
            f"{_OLD_ENV_PREFIX}CONFIG is no longer read: rename it {ENV_PREFIX}CONFIG"
        )


def _flag_name(setting: Setting) -> str:
    return setting.flags[-1] if setting.flags else setting.metavar or setting.name


def load(
    argv: list[str] | None = None, environ: Mapping[str, str] | None = None
) -> tuple[Config, bool]:
    """Build the effective Config from flags, environment, config file and defaults.

    Returns (config, check_only). Raises ConfigError naming the bad setting, or with
    argparse's one-line message for an unknown flag or a flag missing its value.
    """
    environ = os.environ if environ is None else environ
    args = vars(_parser().parse_args(argv))
    _refuse_old_names(environ)
    raw: dict[str, tuple[Any, str]] = {}

    config_file = args.pop("config", None) or environ.get(ENV_PREFIX + "CONFIG")
    if config_file:
        try:
            namespace = runpy.run_path(config_file)
        except Exception as exc:  # any error in the user's file
            raise ConfigError(f"--config: cannot load {config_file}: {exc}") from None
        known = {s.name for s in SETTINGS}
        for key, value in namespace.items():
            if key in known:
                raw[key] = (value, f"file {config_file}")
    for s in SETTINGS:
        for name in s.env:  # highest first
            if environ.get(name, "") != "":
                raw[s.name] = (environ[name], f"env {name}")
                break
    check_only = bool(args.pop("check_config", False))
    for key, value in args.items():
        if value is not None:
            raw[key] = (value, "flag")

    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for s in SETTINGS:
        if s.name not in raw:
            continue
        value, origin = raw[s.name]
        try:
            values[s.name] = s.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{_flag_name(s)} ({origin}): {exc}") from None
        source[s.name] = origin
    if values.get("reload") and values.get("preload"):
        raise ConfigError(
            "--reload: not with --preload (the master holds the app's code, so new "
            "workers would start with the old one)"
        )
    if "app" not in values:
        raise ConfigError(
            "APP_MODULE: missing; give MODULE:CALLABLE, e.g. wsgistack_demo.wsgi:application"
        )
    return Config(**values, source=source), check_only
