"""Allow `python -m nb2prod`, the same as the console script."""

import sys

from nb2prod.cli import main

sys.exit(main())
