"""Arms: the ways a binder classifier is trained, one module per family, registered by name."""

from delbind.arms import baselines, lp_ft, transformer  # noqa: F401  (each registers itself)
from delbind.arms.base import ARM_FAMILIES, TEST_SETS, VAL_SETS, ArmInputs, ArmResult

__all__ = ["ARM_FAMILIES", "TEST_SETS", "VAL_SETS", "ArmInputs", "ArmResult"]
