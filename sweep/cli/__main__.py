"""`python -m sweep` is the `negmargin` command."""

import sys

from sweep.cli import main

sys.exit(main())
