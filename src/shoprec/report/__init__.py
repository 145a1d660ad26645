"""`shoprec report`: what a change does to the model, with honest uncertainty.

Each side (base and head) runs its own notebooks and package from its own git worktree through
the real pipeline, on the same data, seeds and profile; the report compares the two runs test
user by test user (a paired bootstrap) and says what changed and whether head would ship.

    errors        why a report cannot be made
    git           commits, worktrees and changed paths
    environments  the Python each side runs in (the current one, or a venv from its lock)
    cache         side results kept by (commit, data fingerprint, lock hash)
    sides         running each side's pipeline in its own worktree
    inputs        reading a side's run: its top-20 lists, held-out and training data
    segments      users by history length, items by popularity
    bootstrap     resampling test users: exact, seeded, paired
    metrics       the comparison: metrics at k = 1..20 and by segment, with intervals
    changes       what changed: notebooks, parameters, modules, lock file
    plots         the PNG figures
    render        report.md and report.json
    command       the command line handler
"""
