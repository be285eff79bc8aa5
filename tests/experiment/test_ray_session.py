"""The one line spa-tune prints when Ray cannot be started or reached."""

from spa_tune.experiment.ray_session import error_summary


def test_a_plain_error_keeps_its_first_line():
    assert error_summary(ConnectionError("Could not find any running Ray instance.\nmore")) == (
        "Could not find any running Ray instance."
    )


def test_a_server_traceback_adds_its_last_line():
    err = ConnectionAbortedError(
        "Initialization failure from server:\nTraceback (most recent call last):\n  File \"x\", line 1\n"
        "RuntimeError: Proxy failed to Connect to backend!\n"
    )
    assert error_summary(err) == (
        "Initialization failure from server: RuntimeError: Proxy failed to Connect to backend!"
    )


def test_an_empty_message_names_the_error_type():
    assert error_summary(RuntimeError("")) == "RuntimeError"
