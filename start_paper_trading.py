"""Seed entry point: start the paper-trading bot (the simulated market unless told otherwise).

Equivalent to ``gnosis run``; any arguments are passed through, e.g.
``python start_paper_trading.py --symbols SPY,QQQ --speed 600``.
"""

import sys

from gnosis.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
