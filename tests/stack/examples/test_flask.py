"""examples/flask deployed as a user would deploy their own Flask project:
from a folder outside the repository, with an app factory
(``APP_MODULE='myapp:create_app()'``), its own requirements (a Flask other
than the template's), its static folder served by nginx, and `make dev`
reloading an edit without a rebuild. No file of the template changes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.stack.examples.deploy import Deployment, deploy_example, poll

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SETTINGS = {"APP_MODULE": "myapp:create_app()", "STATIC_DIR": "myapp/static"}


@pytest.fixture(scope="module")
def flask_app(docker_works, tmp_path_factory) -> Iterator[Deployment]:
    yield from deploy_example("flask", tmp_path_factory.mktemp("user"), lambda _: SETTINGS)


def test_the_apps_factory_answers_through_nginx(flask_app):
    status, headers, body = flask_app.get("/")
    assert (status, body) == (200, b"Hello from the Flask example!\n")
    assert headers["Server"] == "nginx"
    assert flask_app.get("/items/7")[2] == b'{"item":7}\n'


def test_its_own_requirements_are_installed_not_the_templates(flask_app):
    result = flask_app.compose(
        "exec", "-T", "app", "python", "-c", "import flask; print(flask.__version__)"
    )
    assert result.stdout.strip() == "3.0.3"  # examples/flask/requirements.txt


def test_a_static_file_is_served_by_nginx(flask_app):
    status, headers, body = flask_app.get("/static/hello.txt")
    assert (status, body) == (200, b"a static file of the Flask example\n")
    # nginx's static location, not Flask's send_file: its CSP, its ETag format
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert headers["Cache-Control"] == "public, max-age=3600"
    assert headers["ETag"].count("-") == 1 and "Werkzeug" not in str(headers)


def test_a_static_path_nginx_does_not_have_goes_to_the_app(flask_app):
    status, _, body = flask_app.get("/static/not-here.txt")
    assert status == 404 and b"Not Found" in body  # Flask's own 404 page


def test_secrets_and_the_projects_git_never_enter_the_image(flask_app):
    files = flask_app.files_in_image("app", "/srv")
    assert "myapp/__init__.py" in files
    assert not [f for f in files if f.startswith((".env", ".git", ".venv"))], files


def test_make_dev_shows_an_edit_without_a_rebuild(flask_app):
    flask_app.make("dev")
    assert poll(flask_app, "/", b"Hello from the Flask example!", 30) is not None
    source = flask_app.folder / "myapp" / "__init__.py"
    source.write_text(source.read_text().replace("Hello from the Flask example!", "Edited!"))
    delay = poll(flask_app, "/", b"Edited!", 10)
    print(f"\n  make dev: the edit answered after {delay if delay is None else round(delay, 2)} s")
    assert delay is not None, flask_app.logs()
