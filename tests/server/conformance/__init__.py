"""The conformance suite: raw sockets against real server processes serving
the ``recorder`` app (RECORDER, imported by the server from the repository
root)."""

RECORDER = "tests.server.conformance.recorder:application"
