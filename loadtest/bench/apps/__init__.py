"""The framework apps of ``make bench``'s flask-hello and django-hello scenarios: hello
world through a real framework, where the server's share of each request is smaller
than with the demo app. Each module has the WSGI callable ``app`` and ``GREETING``
(bytes), its answer to GET /, which the bench checks (``scenarios.answer_ok``)."""
