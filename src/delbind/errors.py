"""Errors a user can fix, shown as one line by the scripts instead of a traceback.

A leaf module: it imports nothing, so a script that only wants the exception types stays fast.
Only these are caught: a FileNotFoundError from a bug deep in a library must still show its traceback.
"""


class AssetError(RuntimeError):
    """An asset could not be fetched or failed its hash check; the message says how to fix it."""


class ConfigError(ValueError):
    """A config value is out of its range; the message names the key and what it accepts."""


class DataError(ValueError):
    """The input data cannot make a valid dataset; the message names the problem and the fix."""


class ModelLoadError(RuntimeError):
    """A pretrained model or tokenizer could not be loaded; the message says how to supply it."""


class ResumeError(FileNotFoundError):
    """``resume`` names no checkpoint; the message says what was looked for."""


class RunDirExistsError(FileExistsError):
    """The run dir already holds a run: no run overwrites another's output."""


class DivergedError(ArithmeticError):
    """Training produced a non-finite loss or gradient norm; the message gives the step, the settings and the fixes."""


class NoRunsError(FileNotFoundError):
    """A comparison or report was given dirs that hold no metrics.json."""


class UnreadableRunError(RuntimeError):
    """A run dir or model dir read back is unfinished, partial or damaged; the message names it and what to do."""


USER_ERRORS = (
    AssetError,
    ConfigError,
    DataError,
    DivergedError,
    ModelLoadError,
    NoRunsError,
    ResumeError,
    RunDirExistsError,
    UnreadableRunError,
)
