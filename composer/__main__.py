"""``python -m composer``: see :mod:`composer.cli`."""

import sys

try:
    from composer.cli import main
except KeyboardInterrupt:  # Ctrl-C while the program starts: one line, as later
    print("stopped (Ctrl-C).", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
