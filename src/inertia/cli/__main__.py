"""``python -m inertia.cli``: the ``inertia`` command."""

from . import main

raise SystemExit(main())
