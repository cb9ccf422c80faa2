"""`python -m maxwell` is the `maxwell` command."""

import sys

from maxwell.cli import main

sys.exit(main())
