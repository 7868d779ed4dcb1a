"""loadtest.environment: what a report says about the machine it ran on."""

from __future__ import annotations

import sysconfig

import pytest

from loadtest import environment


def test_describe_names_the_cpu_the_cpus_the_kernel_and_the_python_build():
    machine = environment.describe()
    assert set(machine) == {"cpu_model", "cpus", "kernel", "python"}
    assert machine["cpus"] >= 1
    assert machine["cpu_model"] != "?"  # Linux: /proc/cpuinfo has a model name
    assert machine["python"].startswith("CPython 3.")


@pytest.mark.parametrize(
    ("config_args", "build"),
    [
        ("'--enable-optimizations' '--with-lto'", "(PGO, LTO)"),
        ("'--enable-optimizations'", "(PGO)"),
        ("'--prefix=/usr'", "(no PGO, no LTO)"),
        (None, "(no PGO, no LTO)"),
    ],
)
def test_python_build_reads_configure_s_flags(monkeypatch, config_args, build):
    real = sysconfig.get_config_var
    monkeypatch.setattr(
        sysconfig,
        "get_config_var",
        lambda name: config_args if name == "CONFIG_ARGS" else real(name),
    )
    assert environment.python_build().endswith(build)
