"""User-facing errors: one line, exit code 2, no traceback."""


class SpaTuneError(Exception):
    """Bad input from the user (a config key, a file, a data example).

    The message must be a single line that names the file, key, row or example at fault.
    The command line prints it as ``spa-tune: error: <message>`` and exits with code 2.
    """

    exit_code = 2


class TrainingDiverged(SpaTuneError):
    """A trial's loss stopped being a finite number; the trial fails (a retry starts from its last checkpoint)."""

    exit_code = 1
