"""``python -m kiskadee``: the same as the ``kiskadee`` command."""

import sys

from kiskadee.cli import main

sys.exit(main())
