"""``python -m modelkit``: the same as the ``modelkit`` command."""

import sys

from modelkit.cli import main

sys.exit(main())
