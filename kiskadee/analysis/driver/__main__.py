"""``python3 -m kiskadee.analysis.driver``: the compile driver (see ``kiskadee.analysis.driver.driver``)."""

import sys

from .driver import main

sys.exit(main())
