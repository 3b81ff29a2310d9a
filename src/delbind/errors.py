"""Errors a user can fix, shown as one line by the scripts instead of a traceback."""

from delbind.assets import AssetError
from delbind.data import DataError
from delbind.modeling import ModelLoadError

USER_ERRORS = (AssetError, DataError, ModelLoadError, FileNotFoundError, FileExistsError)
