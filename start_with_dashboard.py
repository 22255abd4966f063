"""Seed entry point: the bot with its web dashboard (``gnosis run --dashboard``).

Open the URL it prints (http://127.0.0.1:8080 by default). Any arguments are passed through,
e.g. ``python start_with_dashboard.py --symbols SPY,QQQ --port 8090 --token secret``.
"""

import sys

from gnosis.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", "--dashboard", *sys.argv[1:]]))
