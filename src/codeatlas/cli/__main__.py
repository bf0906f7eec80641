"""``python -m codeatlas.cli``: the same as the ``codeatlas`` command."""

import sys

from . import main

sys.exit(main())
