"""``python -m rnnserve.cli``: the ``rnnserve`` command (replicas and tests start it this way)."""

import sys

from rnnserve.cli import main

sys.exit(main())
