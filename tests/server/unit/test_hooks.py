"""Server hooks in a -c config file, with gunicorn's names and arguments
(config.HOOKS, hooks.run_hook)."""

from __future__ import annotations

import logging

import pytest
from wsgistack.config import HOOKS, ConfigError, load
from wsgistack.hooks import run_hook

GUNICORN_HOOKS = {
    "on_starting": 1,
    "when_ready": 1,
    "post_fork": 2,
    "post_worker_init": 1,
    "worker_exit": 2,
    "on_exit": 1,
    "pre_request": 2,
    "post_request": 4,
}


def test_the_hooks_are_gunicorns():
    assert {name: arity for name, arity, _, _ in HOOKS} == GUNICORN_HOOKS


def test_hooks_come_from_the_config_file_only(tmp_path):
    path = tmp_path / "conf.py"
    path.write_text("def post_fork(server, worker):\n    pass\n\ndef on_exit(server):\n    pass\n")
    cfg, _ = load(["-c", str(path), "a:b"], environ={"WSGISTACK_ON_STARTING": "x"})
    assert cfg.post_fork is not None and cfg.post_fork.__name__ == "post_fork"
    assert cfg.on_starting is None  # no environment variable sets a hook
    line = cfg.describe()
    assert f"post_fork=post_fork(file {path})" in line and "pre_request=None(default)" in line


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("post_fork = 3", "post_fork (file {}): must be a function, got 3"),
        (
            "def post_fork(server):\n    pass",
            "post_fork (file {}): must take 2 argument(s), as gunicorn's post_fork",
        ),
    ],
)
def test_a_bad_hook_is_a_one_line_config_error(tmp_path, source, message):
    path = tmp_path / "conf.py"
    path.write_text(source + "\n")
    with pytest.raises(ConfigError) as error:
        load(["-c", str(path), "a:b"], environ={})
    assert str(error.value) == message.format(path)


def test_a_hook_that_raises_is_logged_with_its_name_and_swallowed(tmp_path, caplog):
    path = tmp_path / "conf.py"
    path.write_text("def when_ready(server):\n    raise ValueError('no DSN')\n")
    cfg, _ = load(["-c", str(path), "a:b"], environ={})
    with caplog.at_level(logging.ERROR, logger="wsgistack.error"):
        run_hook(cfg, "when_ready", object())
        run_hook(cfg, "on_starting", object())  # not set: nothing happens
    (record,) = caplog.records
    assert record.getMessage() == "hook when_ready raised"
    assert record.exc_info and "no DSN" in str(record.exc_info[1])
