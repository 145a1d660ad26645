"""Every shoprec benchmark, one module each, run by its `make benchmark-*` target from the root.

Benchmarks are scripts that measure and print, never timed tests. Each writes
`docs/benchmarks/<name>.md` and `.json` with the machine, the date, the load average and its
rows side by side (`benchmarks.report`); the machine may be shared, so a benchmark compares
ratios measured in one run and says what the load was.
"""
