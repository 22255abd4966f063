"""Seed entry point: the bot with its web dashboard (``gnosis run --dashboard``).

The dashboard is not built yet; until it lands this starts the bot and says so.
"""

import sys

from gnosis.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "--dashboard", *sys.argv[1:]]))
