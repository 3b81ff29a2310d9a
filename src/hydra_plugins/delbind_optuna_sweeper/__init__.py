"""A minimal Optuna sweeper for Hydra 1.3 that runs on current Optuna (4.x, 5.x).

The published hydra-optuna-sweeper 1.3.0 pins optuna<3, so it cannot be installed next to a current
Optuna. Hydra finds this plugin by scanning the ``hydra_plugins`` namespace package.
"""
