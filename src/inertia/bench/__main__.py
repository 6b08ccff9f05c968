"""``python -m inertia.bench ARGS``: the same as ``inertia bench ARGS``."""

from .run import main

if __name__ == "__main__":          # the guard matters: worker processes import this file
    raise SystemExit(main())
