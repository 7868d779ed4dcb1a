"""wsgistack.metrics._fastvalue: the cheaper ``inc`` over prometheus-client's
multiprocess value, and its fallback to the library's public path when the
installed release lacks the private fields it uses."""

from __future__ import annotations

import logging

from prometheus_client import values
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import CollectorRegistry
from wsgistack.metrics._fastvalue import fast_value_class


class _ValueWithoutPrivateFields:
    """Stands in for a prometheus-client release whose value keeps its state elsewhere."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.total = 0.0

    def inc(self, amount: float) -> None:
        self.total += amount

    def set(self, value: float, timestamp: float | None = None) -> None:
        self.total = value

    def get(self) -> float:
        return self.total


def _value(cls: type, name: str = "requests_total") -> object:
    return cls("counter", name, name, [], [], "help", multiprocess_mode="")


def test_missing_private_fields_fall_back_to_the_public_path_with_one_warning(caplog):
    generation = object()
    cls = fast_value_class(_ValueWithoutPrivateFields, lambda: generation)
    with caplog.at_level(logging.WARNING, logger="wsgistack.error"):
        first, second = _value(cls), _value(cls, "other_total")
        for _ in range(3):
            first.inc(2.0)
    assert first.get() == 6.0 and second.get() == 0.0
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "lacks the fields" in warnings[0] and "public update path" in warnings[0]


def test_the_installed_library_takes_the_fast_path_and_totals_stay_exact(
    tmp_path, monkeypatch, caplog
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    generation = [object()]
    library = values.MultiProcessValue(process_identifier=lambda: "worker1")
    cls = fast_value_class(library, lambda: generation[0])
    with caplog.at_level(logging.WARNING, logger="wsgistack.error"):
        value = _value(cls)
        for _ in range(5):
            value.inc(1.0)
        generation[0] = object()  # as after set_identity() or a fork: the library's check
        value.inc(1.0)
    assert caplog.records == []
    assert value.get() == 6.0
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(tmp_path))
    assert registry.get_sample_value("requests_total") == 6.0
