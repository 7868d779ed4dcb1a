"""``make bench`` (``python -m loadtest.bench``): our WSGI server against gunicorn,
waitress, granian and the C servers bjoern and uWSGI, side by side.

Every engine serves the demo app (``wsgistack_demo.wsgi:application``; a scenario's
``[bench] app``, the Flask and Django hello worlds of ``apps/``, instead) on loopback behind
the same host nginx (Debian ``nginx-light``, a minimal config written to a temp
folder: upstream keep-alive, ``proxy_http_version 1.1``, empty ``Connection`` —
the proxy settings of ``nginx/templates/app-proxy.inc.template`` in plain HTTP, so
TLS costs nothing here), with the same worker and thread counts, and ``wrk``
drives nginx. Engines:

    wsgistack         python -m wsgistack -w W --threads T (as shipped: the hot
                      path compiled, metrics in multiprocess files)
    wsgistack-python  the same, WSGISTACK_NO_EXTENSIONS=1: the hot path's Python source
    wsgistack-bare    the same compiled, without PROMETHEUS_MULTIPROC_DIR: no metrics
                      files (no engine writes an access log)
    gunicorn-sync     gunicorn -k sync -w W             (no threads)
    gunicorn-gthread  gunicorn -k gthread -w W --threads T
    waitress          W waitress processes, --threads T each (waitress has no
                      pre-fork mode; nginx balances over their W ports)
    granian           granian --interface wsgi --workers W --blocking-threads T
    bjoern            bjoern (C, libev) in W forked processes (bjoern_serve: it has no
                      command line); no threads
    uwsgi             uwsgi --master --processes W [--threads T when T > 1]: nginx
                      speaks the uwsgi protocol to it (uwsgi_pass, as tiangolo's
                      uwsgi-nginx images), hello-direct goes to its --http11-socket
    nginx-static      not a WSGI engine: a second nginx (W worker processes)
                      that answers the greeting itself. The ceiling: what
                      this machine reaches for ``hello`` when the upstream
                      costs (almost) nothing.

Scenarios (``loadtest/scenarios/bench/<name>.toml``, read with ``loadtest.scenario``):
``hello`` (GET /), ``64k`` (GET /api/stream?chunks=1&size=65536), ``upload`` (POST
/api/upload of 1 MiB, from a wrk Lua script) with T threads, ``sleep`` (GET
/api/sleep?ms=20) with BENCH_SLEEP_THREADS threads, ``hello-direct``: hello world
with wrk hitting the engine's port itself, no nginx (not waitress: its W processes
listen on W ports, which one wrk cannot balance), and ``flask-hello`` and
``django-hello``: GET / of a hello world through Flask and through Django
(``apps/flask_hello.py``, ``apps/django_hello.py``), on engines started for that app.

The engines of a thread count and app are started side by side (each with its own
nginx) and stay up for every round; wrk loads one at a time. A round measures
each scenario on every engine back to back, in an order rotated each round, so
the engines of one scenario are measured seconds apart and the drifts of a
shared machine hit them alike. Reported per engine and scenario: median
requests/s, median p50 and p99 latency (wrk --latency), peak RSS of one worker
process (sampled from /proc), errors, and the ratio to gunicorn sync (and to
gunicorn gthread): the median over the rounds of the round's requests/s ratio.
Only the ratios mean something beyond this machine and run.

The headline is the pinned phase (BENCH_PINNED=1, on a machine with two CPUs or more):
the scenarios marked ``pinned`` (hello, hello-direct) again, every engine with ONE
worker pinned to one CPU and nginx and wrk pinned to another (os.sched_setaffinity),
so one CPU is the engine's whole budget: its CPU µs per request (from /proc) and
req/s, and the ratio of its CPU per request to bjoern's and granian's. These hardly
depend on what else runs on the machine. Issue 15's targets are checked from the
same numbers and printed met, NOT met or not measured (``table.check_targets``).

Writes ``reports/bench-<timestamp>/results.json`` and ``results.md`` and prints
the table. Environment (defaults in brackets):

    BENCH_DURATION       seconds of each measured wrk run [3]
    BENCH_WARMUP         seconds of wrk warm-up before each run [1]
    BENCH_ROUNDS         interleaved rounds [3]
    BENCH_WORKERS        worker processes of every engine [2]
    BENCH_THREADS        threads per worker, hello/64k/upload [1]
    BENCH_SLEEP_THREADS  threads per worker, sleep [8]
    BENCH_CONNECTIONS    wrk connections to nginx [32]
    BENCH_PINNED         1: the pinned phase after the shared one, 0: none [1]
    BENCH_ENGINES        comma-separated engines [all]
    BENCH_SCENARIOS      comma-separated scenarios [all]

Needs ``nginx`` and ``wrk`` (Debian: ``apt-get install nginx-light wrk``;
``--install-missing`` does that when run as root) and a Python with
requirements/bench.txt (``make bench`` creates .venv-bench and does both); bjoern and
uWSGI are built from requirements/bench-c.txt by ``--install-missing`` (a compiler,
Python's and libev's headers first), and left out, in one line, when they cannot be.
Every process it starts runs in its own session and is stopped (its whole
process group) when its run ends, on Ctrl-C, SIGTERM or SIGHUP, and at exit.

Modules: ``settings`` (BENCH_*), ``scenarios``, ``apps`` (the framework apps),
``engines``, ``bjoern_serve``, ``nginx`` (the host configs), ``wrk`` (its report parsed,
its Lua script), ``sampling`` (/proc CPU and RSS), ``pinning`` (the pinned phase's
CPUs), ``processes``, ``tools`` (nginx, wrk, packages, the C servers' build),
``session`` (one engine and its nginx), ``run`` (the plan and the report), ``results``
and ``table`` (summary, ratios, issue 15's targets, Markdown); the statistics are
``loadtest.analysis``'s and the machine description ``loadtest.environment``'s.
"""
