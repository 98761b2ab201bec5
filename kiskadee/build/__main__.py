"""``python3 -m kiskadee.build``: the compile driver (see ``kiskadee.build.driver``)."""

import sys

from .driver import main

sys.exit(main())
