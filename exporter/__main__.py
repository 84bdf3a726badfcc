"""`python -m exporter` runs the `smswatch` command line."""

import sys

from exporter.cli import main

sys.exit(main())
