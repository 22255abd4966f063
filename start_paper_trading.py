"""Seed entry point: the paper-trading bot, built as ``LiveTradingBot`` (see gnosis/launchers.py).

With no options it runs SPY on the embedded simulated market as a dry run, memory on.
``python start_paper_trading.py --feed alpaca`` runs on Alpaca's bars (keys from the environment
or .env); add ``--trade`` to place the orders on the paper account. ``--help`` lists the rest;
``gnosis run`` has every option.
"""

import sys

from gnosis.launchers import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], prog="start_paper_trading.py"))
