"""server.config: four sources, highest first; bad values name their setting."""

from __future__ import annotations

import subprocess
import sys

import pytest
from wsgistack.config import Config, ConfigError, load

from tests.support import ROOT


def test_defaults():
    cfg, check = load(["app:application"], environ={})
    assert check is False
    assert cfg == Config(app="app:application")
    assert cfg.bind == ["127.0.0.1:8000"]
    assert cfg.keep_alive == 75.0  # longer than nginx's upstream keepalive_timeout (60 s)
    assert cfg.access_log_style == "json"
    assert "workers=2(default)" in cfg.describe()
    assert "chmod_socket=0o660(default)" in cfg.describe()  # a mode reads in octal


def test_precedence_flag_env_file_default(tmp_path):
    config = tmp_path / "conf.py"
    config.write_text("workers = 5\nthreads = 2\nbacklog = 64\nbind = ['0.0.0.0:9000']\n")
    env = {"WEB_CONCURRENCY": "3", "WSGISTACK_THREADS": "4", "WSGISTACK_BACKLOG": ""}
    cfg, _ = load(["-c", str(config), "--threads", "8", "app:application"], environ=env)
    assert cfg.threads == 8 and cfg.source["threads"] == "flag"
    assert cfg.workers == 3 and cfg.source["workers"] == "env WEB_CONCURRENCY"
    assert cfg.backlog == 64 and cfg.source["backlog"] == f"file {config}"  # empty env ignored
    assert cfg.bind == ["0.0.0.0:9000"]
    assert cfg.timeout == 30.0 and "timeout" not in cfg.source


def test_server_workers_env_beats_web_concurrency():
    cfg, _ = load(["a:b"], environ={"WEB_CONCURRENCY": "3", "WSGISTACK_WORKERS": "6"})
    assert cfg.workers == 6


def test_app_from_environment_and_check_config():
    cfg, check = load(["--check-config"], environ={"APP_MODULE": "pkg.mod:app"})
    assert (cfg.app, check) == ("pkg.mod:app", True)


def test_repeated_bind_and_switches():
    cfg, _ = load(
        [
            "-b",
            "127.0.0.1:1",
            "-b",
            "[::1]:2",
            "-b",
            "unix:/tmp/s",
            "--reuse-port",
            "--preload",
            "a",
        ],
        environ={},
    )
    assert cfg.bind == ["127.0.0.1:1", "[::1]:2", "unix:/tmp/s"]
    assert cfg.reuse_port and cfg.preload


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--workers", "0"], {}, "--workers (flag): must be >= 1, got 0"),
        (["--timeout", "soon"], {}, "--timeout (flag): must be a number of seconds, got 'soon'"),
        (
            [],
            {"WSGISTACK_KEEP_ALIVE": "-5"},
            "--keep-alive (env WSGISTACK_KEEP_ALIVE): must be >= 0",
        ),
        (["-b", "localhost"], {}, "--bind (flag): must be HOST:PORT or unix:PATH, got 'localhost'"),
        (["-b", "h:99999"], {}, "--bind (flag): must be HOST:PORT or unix:PATH"),
        (["-b", "unix:"], {}, "--bind (flag): unix: needs a path"),
        (["--chmod-socket", "999"], {}, "--chmod-socket (flag): must be an octal file mode"),
        (["--chmod-socket", "1000"], {}, "--chmod-socket (flag): must be between 000 and 777"),
        (["--script-name", "app"], {}, "--script-name (flag): must start with '/'"),
        (["--forwarded-allow-ips", "10.0.0.300"], {}, "--forwarded-allow-ips (flag): must be"),
        (["--log-level", "verbose"], {}, "--log-level (flag): must be debug, info,"),
        (["--access-log-style", "xml"], {}, "--access-log-style (flag): must be json or combined"),
        (
            [],
            {"WSGISTACK_PRELOAD": "maybe"},
            "--preload (env WSGISTACK_PRELOAD): must be true or false",
        ),
    ],
)
def test_bad_values_name_the_setting(argv, env, message):
    with pytest.raises(ConfigError) as error:
        load([*argv, "app:application"], environ=env)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_missing_app():
    with pytest.raises(ConfigError, match="^APP_MODULE: missing"):
        load([], environ={})


def test_bad_app_spec():
    with pytest.raises(ConfigError, match=r"must be MODULE:NAME or MODULE:FACTORY\(...\)"):
        load(["mod:"], environ={})


def test_config_file_that_fails_to_load(tmp_path):
    config = tmp_path / "broken.py"
    config.write_text("workers = = 2\n")
    with pytest.raises(ConfigError, match=f"^--config: cannot load {config}"):
        load(["-c", str(config), "a:b"], environ={})


def test_values_are_normalised():
    cfg, _ = load(
        [
            "--script-name",
            "/mount/",
            "--chmod-socket",
            "600",
            "--forwarded-allow-ips",
            "10.0.0.0/8, 127.0.0.1,*",
            "--access-log-style",
            "COMBINED",
            "a:b",
        ],
        environ={"WSGISTACK_REUSE_PORT": "yes"},
    )
    assert cfg.script_name == "/mount"
    assert cfg.chmod_socket == 0o600
    assert cfg.forwarded_allow_ips == ["10.0.0.0/8", "127.0.0.1", "*"]
    assert cfg.access_log_style == "combined"
    assert cfg.reuse_port is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-w"], "argument -w/--workers: expected one argument"),
        (["--no-such-flag", "a:b"], "unrecognized arguments: --no-such-flag"),
        (["a:b", "c:d"], "unrecognized arguments: c:d"),
    ],
)
def test_argparse_errors_are_one_line(argv, message):
    with pytest.raises(ConfigError) as error:
        load(argv, environ={})
    assert str(error.value) == message


def test_command_line_error_is_one_line_and_status_2():
    result = subprocess.run(
        [sys.executable, "-m", "wsgistack", "-w"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr == "error: argument -w/--workers: expected one argument\n"
    assert result.stdout == ""
    help_text = subprocess.run(
        [sys.executable, "-m", "wsgistack", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0
    assert help_text.stdout.startswith("usage: wsgistack")
    assert "--chmod-socket MODE" in help_text.stdout and "--check-config" in help_text.stdout


@pytest.mark.parametrize(
    ("written", "mode"),
    [
        ("0o660", 0o660),  # a Python octal literal: the mode itself, as for os.chmod
        ("0o600", 0o600),
        ("0o777", 0o777),
        ("0o400", 0o400),
        ("420", 0o644),  # an int is the mode itself, whatever base it is written in
        ("0", 0),
        ("'660'", 0o660),  # strings are octal digits, as on the command line
        ("'0o640'", 0o640),
    ],
)
def test_chmod_socket_in_a_config_file(tmp_path, written, mode):
    config = tmp_path / "conf.py"
    config.write_text(f"chmod_socket = {written}\n")
    cfg, _ = load(["-c", str(config), "a:b"], environ={})
    assert cfg.chmod_socket == mode


LITERAL = "(a Python octal literal)"


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("660", f"an int is the mode itself: write 0o660 {LITERAL} or '660', got 660"),
        ("1000", f"an int is the mode itself: write 0o1000 {LITERAL} or '1000', got 1000"),
        ("'999'", "must be an octal file mode like 660 or 0o660, got '999'"),
        ("'1000'", "must be between 000 and 777, got '1000'"),
        ("-1", "must be between 0 and 0o777, got -1"),
        ("True", "must be an octal file mode like 660 or 0o660, got True"),
        ("'rw-rw----'", "must be an octal file mode like 660 or 0o660, got 'rw-rw----'"),
    ],
)
def test_bad_chmod_socket_in_a_config_file(tmp_path, written, message):
    config = tmp_path / "conf.py"
    config.write_text(f"chmod_socket = {written}\n")
    with pytest.raises(ConfigError) as error:
        load(["-c", str(config), "a:b"], environ={})
    assert str(error.value) == f"--chmod-socket (file {config}): {message}"
