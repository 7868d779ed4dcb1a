"""The demo WSGI application served by the stack (see app.wsgi)."""
