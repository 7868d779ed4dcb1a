"""A Flask project as users write it: an application factory, a static
folder, its own requirements. Deployed behind the stack with

    make up APP_DIR=examples/flask APP_MODULE='myapp:create_app()' STATIC_DIR=myapp/static
"""

from flask import Flask, request

GREETING = "Hello from the Flask example!"


def create_app(greeting: str = GREETING) -> Flask:
    """The WSGI application (Flask's app factory pattern)."""
    app = Flask(__name__)

    @app.before_request
    def name_the_route() -> None:
        # The route template for the server's metrics (http_route label).
        if request.url_rule is not None:
            request.environ["wsgistack.http_route"] = request.url_rule.rule

    @app.get("/")
    def index() -> str:
        return greeting + "\n"

    @app.get("/items/<int:item_id>")
    def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    return app
