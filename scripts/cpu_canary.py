"""The cross-CPU canary (:func:`siu_lib.cpu.canary_run`): run it and compare it with the golden
file ``tests/golden/cpu_canary.json``, or regenerate that file.

Usage: ``python scripts/cpu_canary.py [--write] [--golden PATH]``. ``--write`` works on the
pinned path only (see :mod:`siu_lib.cpu`); the exit status is 1 when the canary differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from siu_lib.cpu import canary_run, compare_canary, cpu_path_info, current_path
from siu_lib.errors import ConfigError
from siu_lib.paths import REPO_ROOT
from siu_lib.results import atomic_write_json, machine_info

GOLDEN = REPO_ROOT / "tests" / "golden" / "cpu_canary.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--golden", type=Path, default=GOLDEN)
    parser.add_argument("--write", action="store_true", help="write the golden file (pinned path only)")
    args = parser.parse_args(argv)
    if args.write and current_path() != "avx2":
        raise ConfigError(f"the golden canary is written on the pinned path only; this process "
                          f"runs {cpu_path_info()}")
    result = canary_run()
    if args.write:
        atomic_write_json(args.golden, {**result, "machine": machine_info()})
        print(f"wrote {args.golden}")
        return 0
    problems = compare_canary(result, json.loads(args.golden.read_text()))
    info = cpu_path_info()
    print("\n".join(problems) if problems else
          f"the canary matches {args.golden} (path {info['path']}, capability {info['capability']})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
