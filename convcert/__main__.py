"""``python -m convcert``: the same as the ``convcert`` command."""

import sys

from convcert.cli import main

sys.exit(main())
