"""Errors a user can fix, shown as one line by the scripts instead of a traceback.

Only these: a FileNotFoundError from a bug deep in a library must still show its traceback.
"""

from delbind.assets import AssetError
from delbind.data import DataError
from delbind.modeling import ModelLoadError
from delbind.pipeline import RunDirExistsError
from delbind.training import ResumeError

USER_ERRORS = (AssetError, DataError, ModelLoadError, ResumeError, RunDirExistsError)
