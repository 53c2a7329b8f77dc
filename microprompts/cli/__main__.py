"""`python -m microprompts.cli`: the same as the `microprompts` command."""

import sys

from microprompts.cli import main

sys.exit(main())
