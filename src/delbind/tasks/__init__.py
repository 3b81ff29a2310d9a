"""Tasks: each a ``run(cfg)`` with its own entry config in conf/, called by a thin script in scripts/."""
