"""``python -m lowbit ...``: the same command line as the ``lowbit`` script."""

import sys

from lowbit.cli import main

sys.exit(main())
