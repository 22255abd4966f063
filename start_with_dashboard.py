"""Seed entry point: ``LiveTradingBot`` with its web dashboard (see gnosis/launchers.py).

Open the URL it prints (http://127.0.0.1:8080 by default; ``--port 0`` picks a free port).
Options as ``start_paper_trading.py`` plus ``--host``, ``--port`` and ``--token``.
"""

import sys

from gnosis.launchers import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], dashboard=True, prog="start_with_dashboard.py"))
