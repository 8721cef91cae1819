"""``python -m backend.cli``: the ``maskweb`` command without the console script (``maskweb run`` starts its
worker this way)."""

import sys

from backend.cli import main

sys.exit(main())
