"""The app container's healthcheck (Docker's HEALTHCHECK, compose, Swarm).

Healthy when the server answers HEALTHCHECK_PATH with 2xx — the server's own
--health-path (WSGISTACK_HEALTH_PATH, the default) or an app's readiness
route — and the metrics exporter answers. Exit 0 healthy, 1 not.
"""

import os
import sys
import urllib.request

PATH = os.environ.get("HEALTHCHECK_PATH") or os.environ.get("WSGISTACK_HEALTH_PATH") or "/"

try:
    urllib.request.urlopen(f"http://127.0.0.1:8000{PATH}", timeout=2)
    urllib.request.urlopen("http://127.0.0.1:9100/metrics", timeout=2)
except Exception as error:  # any failure is "unhealthy"; say which
    print(f"healthcheck: {error}", file=sys.stderr)
    sys.exit(1)
