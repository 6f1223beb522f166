"""Training: the one-run trainer (``trainer``), groups of runs in one process (``group``), the stacked
forms of the methods (``stacked/``) and the CLI, ``python -m fewlabels.training``.

``build`` holds what all of them share: seeding, the device, a run's method built in one order,
its random state, and the deterministic-algorithms switch scoped to a run.
"""
