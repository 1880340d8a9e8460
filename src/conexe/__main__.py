"""The ``conexe`` command line: ``python -m conexe bench`` (the comparison
against ThreadPoolExecutor) and ``python -m conexe serve`` (the HTTP task
service, with the ``server`` extra). Each subcommand lives in its own module
and is imported only when asked for::

    $ python -m conexe bench --quick
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="conexe", description="conexe: a fast, correct task executor for Python."
    )
    parser.add_argument("command", choices=["bench", "serve", "info"], help="what to run")
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    args, rest = parser.parse_known_args(argv[:1])
    rest = argv[1:]
    if args.command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if args.command == "serve":
        try:
            from .server.cli import main as serve_main
        except ImportError as exc:  # the optional extra is missing
            print(
                f"conexe serve needs the server extra: pip install 'conexe[server]' ({exc})",
                file=sys.stderr,
            )
            return 2
        return serve_main(rest)
    from . import IMPLEMENTATION, __version__

    print(f"conexe {__version__}, core: {IMPLEMENTATION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
