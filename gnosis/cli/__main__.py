"""``python -m gnosis.cli``: the same as the ``gnosis`` command."""

import sys

from gnosis.cli import main

sys.exit(main())
