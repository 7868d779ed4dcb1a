"""The host nginx configs: one in front of each engine, and nginx-static (the ceiling)."""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from pathlib import Path

from loadtest.bench.engines import HOST
from loadtest.bench.scenarios import GREETING


def _main(directory: Path, name: str, workers: int) -> str:
    """The part of an nginx.conf every instance here shares: foreground, files in
    ``directory``, no access log."""
    user = ""
    if os.geteuid() == 0:  # workers would run as nobody and could not use the temp dirs
        user = f"user {pwd.getpwuid(0).pw_name};\n"
    temp = "\n".join(
        f"    {kind}_temp_path {directory}/{name}-{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""\
{user}daemon off;
worker_processes {workers};
pid {directory}/{name}.pid;
error_log {directory}/{name}-error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    server_tokens off;
{temp}
"""


def static_config(directory: Path, port: int, workers: int) -> str:
    """nginx-static: ``workers`` nginx processes that answer the greeting themselves."""
    greeting = GREETING.decode().replace("\n", "\\n")
    return f"""\
# wsgistack bench: the ceiling, an upstream that costs (almost) nothing.
{_main(directory, "static", workers)}
    server {{
        listen {HOST}:{port};
        default_type "text/plain; charset=utf-8";
        location = / {{
            return 200 "{greeting}";
        }}
    }}
}}
"""


# what Debian's /etc/nginx/uwsgi_params passes (the file tiangolo's uwsgi-nginx images
# include), written out so that the config needs no file outside its folder
UWSGI_PARAMS = (
    ("QUERY_STRING", "$query_string"),
    ("REQUEST_METHOD", "$request_method"),
    ("CONTENT_TYPE", "$content_type"),
    ("CONTENT_LENGTH", "$content_length"),
    ("REQUEST_URI", "$request_uri"),
    ("PATH_INFO", "$document_uri"),
    ("DOCUMENT_ROOT", "$document_root"),
    ("SERVER_PROTOCOL", "$server_protocol"),
    ("REQUEST_SCHEME", "$scheme"),
    ("HTTPS", "$https if_not_empty"),
    ("REMOTE_ADDR", "$remote_addr"),
    ("REMOTE_PORT", "$remote_port"),
    ("SERVER_PORT", "$server_port"),
    ("SERVER_NAME", "$server_name"),
    ("HTTP_HOST", "$host"),  # not the raw Host header (Debian's security workaround)
)


_KEEPALIVE = """
        keepalive 32;
        keepalive_timeout 60s;
        keepalive_requests 10000;"""


def _location(upstream: str) -> str:
    """The ``location /`` body: the stack's HTTP/1.1 proxy settings, or uwsgi_pass."""
    if upstream == "uwsgi":
        params = "\n".join(
            f"            uwsgi_param {name} {value};" for name, value in UWSGI_PARAMS
        )
        return f"            uwsgi_pass app;\n{params}"
    return """\
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;"""


def proxy_config(
    directory: Path, listen_port: int, upstream_ports: Sequence[int], upstream: str = "http"
) -> str:
    """A minimal nginx.conf: plain HTTP on loopback, the stack's upstream settings;
    with ``upstream="uwsgi"``, ``uwsgi_pass`` to uWSGI's uwsgi-protocol socket as
    tiangolo's uwsgi-nginx images have it (no upstream keep-alive: uWSGI closes every
    uwsgi-protocol connection after its request)."""
    servers = "\n".join(f"        server {HOST}:{port};" for port in upstream_ports)
    keepalive = "" if upstream == "uwsgi" else _KEEPALIVE
    return f"""\
# wsgistack bench: nginx in front of one engine; upstream and proxy settings are
# those of nginx/upstream.conf.template and nginx/templates/app-proxy.inc.template.
{_main(directory, "nginx", 1)}
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;

    upstream app {{
{servers}{keepalive}
    }}

    server {{
        listen {HOST}:{listen_port};
        client_max_body_size 16m;

        location / {{
{_location(upstream)}
        }}
    }}
}}
"""
