"""``python -m conexe.bench``: the same as ``python -m conexe bench``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
