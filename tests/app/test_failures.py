"""An engine failure in the window: a plain message, a progress bar that resets, no traceback shown."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from initsim.app.runtime import worker
from initsim.engine import ConfigError, simulate_stream

from appcheck import SMALL


def _failing_after(layers: int, exc: BaseException):
    """A simulation stream that yields its first ``layers`` events, then raises ``exc``."""
    def stream(config, should_stop, memory_limit):
        for index, event in enumerate(simulate_stream(config, should_stop, memory_limit)):
            if index == layers:
                raise exc
            yield event
    return stream


def _message(window) -> str:
    return " ".join(label.text() for label in window.findChildren(QLabel) if label.isVisible())


@pytest.mark.parametrize("exc, words", [
    (ZeroDivisionError("float division by zero"), "internal error"),
    (MemoryError(), "not enough memory"),
    (ConfigError("width", "got 0"), "refused the config: width: got 0"),
])
def test_a_failed_run_says_so_in_plain_words_and_resets_the_progress(qtbot, make_window, monkeypatch,
                                                                      capsys, exc, words):
    monkeypatch.setattr(worker, "simulate_stream", _failing_after(3, exc))
    window = make_window(SMALL.replace(layers=6))
    qtbot.waitUntil(lambda: window.controller.state is not None and window.controller.state.error,
                    timeout=20000)
    qtbot.waitUntil(lambda: "The run failed" in _message(window), timeout=20000)
    text = _message(window)
    assert words in text and "Traceback" not in text
    assert "Failed at the forward pass, layer 3 of 6" in window.status.text()
    assert window.progress.value() == window.progress.minimum() - 1  # reset(): no progress, not stuck
    assert not window.stop_button.isEnabled()
    # A bug's traceback goes to stderr for a report; a refused config or memory is no bug.
    assert ("Traceback" in capsys.readouterr().err) == isinstance(exc, ZeroDivisionError)


def test_failure_text_is_cut_to_a_readable_length():
    text = worker.failure_text(ValueError("x" * 10_000))
    assert len(text) <= worker.MESSAGE_CHARACTERS and text.endswith("\u2026")


def test_a_config_refused_before_it_runs_leaves_nothing_to_stop(qtbot, make_window):
    window = make_window(SMALL.replace(layers=300, width=2048, batch=2048))  # over the 2 GiB default
    qtbot.waitUntil(lambda: "Cannot run this config: memory" in _message(window), timeout=20000)
    assert window.controller.state is None and not window.stop_button.isEnabled()
    assert window.progress.value() == window.progress.minimum() - 1


def test_waiting_offscreen_for_a_refused_config_ends_with_its_reason(qapp):
    # An export or a tour step whose config the window refuses: no run would ever end.
    from initsim.app.io.offscreen import hidden_window, run_and_wait
    from initsim.engine.export import ExportError

    with hidden_window(SMALL) as window:
        run_and_wait(window)
        too_large = SMALL.replace(layers=300, width=2048, batch=2048)
        with pytest.raises(ExportError, match="cannot run this config: memory: .* over the limit"):
            run_and_wait(window, lambda: window.set_config(too_large))
        run_and_wait(window, lambda: window.set_config(SMALL.replace(seed=1)))  # and runs again
        assert window.refusal is None and window.displayed_config() == SMALL.replace(seed=1).validated()
