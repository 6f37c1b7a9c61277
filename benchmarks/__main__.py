"""`python -m benchmarks overhead|logging|jax|cvkan|rule_costs|ddp|all [options]`: one entry point for the benchmarks."""

from __future__ import annotations

import sys

from . import cvkan_speed, ddp_overhead, jax_overhead, mlflow_logging, overhead, rule_costs

_COMMANDS = {"overhead": overhead.main, "logging": mlflow_logging.main,
             "jax": jax_overhead.main, "cvkan": cvkan_speed.main,
             "rule_costs": rule_costs.main, "ddp": ddp_overhead.main}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in (*_COMMANDS, "all"):
        print(f"usage: python -m benchmarks {{{','.join([*_COMMANDS, 'all'])}}} [--quick] "
              f"[options]\n(options of each: python -m benchmarks overhead --help)",
              file=sys.stderr)
        raise SystemExit(2)
    command, rest = argv[0], argv[1:]
    for name in (_COMMANDS if command == "all" else [command]):
        _COMMANDS[name](rest)


if __name__ == "__main__":
    main()
