"""fixlab's benchmarks: the plugin's overhead, measured as ratios within one process.

`python -m benchmarks overhead|logging|all [--quick]`; see benchmarks/README.md. Nothing here
is imported by the plugin or the tests' assertions about timing: targets are checked by reading
the tables these write to benchmarks/results/, never by timed assertions in tests.
"""
