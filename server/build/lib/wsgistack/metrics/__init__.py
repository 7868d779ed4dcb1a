"""Prometheus metrics for every worker: the instruments (``instruments``), the
per-worker files they live in (``files``) and the process that serves them
(``exporter``, the ``wsgistack-exporter`` command)."""
