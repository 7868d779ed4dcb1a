"""examples/django deployed as a user would deploy their Django project: its
settings from an env file (APP_ENV_FILE), `collectstatic` at build time
(APP_BUILD) so nginx serves the admin's static files (STATIC_DIR), and the
database migrated once per deploy by `make manage CMD=migrate`. No file of the
template changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.stack.examples.deploy import Deployment, deploy_example

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _settings(folder: Path) -> dict[str, str]:
    return {
        "APP_MODULE": "mysite.wsgi:application",
        "APP_ENV_FILE": str(folder / "app.env"),
        "STATIC_DIR": "staticfiles",
        "APP_BUILD": "python manage.py collectstatic --noinput",
    }


@pytest.fixture(scope="module")
def django_app(docker_works, tmp_path_factory) -> Iterator[Deployment]:
    yield from deploy_example("django", tmp_path_factory.mktemp("user"), _settings)


def test_the_database_answers_once_migrated_by_make_manage(django_app):
    assert django_app.get("/")[0] == 500  # no tables yet: migrations run once per deploy
    result = django_app.make("manage", "CMD=migrate")
    assert "Applying auth.0001_initial... OK" in result.stdout
    status, _, body = django_app.get("/")
    assert (status, body) == (200, b"Hello from the Django example: 0 users\n")


def test_the_admin_and_its_static_files_served_by_nginx(django_app):
    status, _, page = django_app.get("/admin/login/")
    assert status == 200 and b"/static/admin/css/base.css" in page
    status, headers, css = django_app.get("/static/admin/css/base.css")
    assert status == 200 and b"body" in css
    assert headers["Cache-Control"] == "public, max-age=3600"  # nginx's static location
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_its_own_django_and_settings_from_the_env_file(django_app):
    result = django_app.compose(
        "exec", "-T", "app", "python", "-c", "import django; print(django.get_version())"
    )
    assert result.stdout.strip() == "5.1.15"  # examples/django/requirements.txt
    files = django_app.files_in_image("app", "/srv")
    assert "staticfiles/admin/css/base.css" in files  # collected at build time (APP_BUILD)
    assert not [f for f in files if f.startswith((".env", ".git", ".venv"))], files
