"""`python -m sweep.cli` is the `negmargin` command."""

import sys

from sweep.cli import main

sys.exit(main())
