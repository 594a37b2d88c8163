"""``python -m composer``: see :mod:`composer.cli`."""

from composer.cli import main

raise SystemExit(main())
