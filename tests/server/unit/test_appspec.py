"""APP_MODULE as gunicorn reads it: ``module:name``, ``module:factory()`` and
``module:factory(args)`` with literal arguments (config.parse_app_spec,
wsgi.load_app)."""

from __future__ import annotations

import sys

import pytest
from wsgistack.config import AppSpec, ConfigError, load, parse_app_spec
from wsgistack.wsgi import load_app

FACTORY_MODULE = """
def application(environ, start_response):
    return [b"plain"]


def create_app(name="default", *, debug=False):
    def app(environ, start_response):
        return [f"{name} {debug}".encode()]
    return app


class holder:
    app = application


def broken_factory():
    raise RuntimeError("the factory failed")


not_a_factory = 42
"""


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("myapp", AppSpec("myapp", ("application",))),
        ("myapp:app", AppSpec("myapp", ("app",))),
        ("pkg.mod:holder.app", AppSpec("pkg.mod", ("holder", "app"))),
        ("myapp:create_app()", AppSpec("myapp", ("create_app",), ((), {}))),
        (
            "myapp:create_app('prod', debug=True)",
            AppSpec("myapp", ("create_app",), (("prod",), {"debug": True})),
        ),
        ("myapp:f(1, [2, 3], x=None)", AppSpec("myapp", ("f",), ((1, [2, 3]), {"x": None}))),
    ],
)
def test_specs_parse(spec, parsed):
    assert parse_app_spec(spec) == parsed


@pytest.mark.parametrize(
    "spec",
    [
        "",
        ":app",
        "myapp:",
        "my-app:app",
        "myapp:create_app(os.environ)",  # not a literal
        "myapp:create_app(**options)",
        "myapp:app[0]",
        "myapp:1 + 2",
        "myapp:create_app(",
    ],
)
def test_bad_specs_are_one_line_config_errors(spec):
    with pytest.raises(ConfigError) as error:
        load([spec], environ={})
    message = str(error.value)
    assert message.startswith("APP_MODULE (flag): ") and "\n" not in message


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "factories.py").write_text(FACTORY_MODULE)
    monkeypatch.chdir(tmp_path)
    yield "factories"
    sys.modules.pop("factories", None)


def _body(app) -> bytes:
    return b"".join(app({}, lambda status, headers: None))


def test_load_app_calls_factories_with_their_arguments(factory_module):
    assert _body(load_app(f"{factory_module}")) == b"plain"
    assert _body(load_app(f"{factory_module}:holder.app")) == b"plain"
    assert _body(load_app(f"{factory_module}:create_app()")) == b"default False"
    assert _body(load_app(f"{factory_module}:create_app('prod', debug=True)")) == b"prod True"


def test_load_app_reports_factories_that_fail(factory_module):
    with pytest.raises(RuntimeError, match="the factory failed"):
        load_app(f"{factory_module}:broken_factory()")
    with pytest.raises(TypeError, match="not a factory to call"):
        load_app(f"{factory_module}:not_a_factory()")
    with pytest.raises(TypeError, match="is not callable"):
        load_app(f"{factory_module}:not_a_factory")
