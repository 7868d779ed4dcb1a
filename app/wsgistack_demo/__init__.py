"""The demo WSGI application served by the stack (see wsgistack_demo.wsgi)."""
