"""``python -m player.cli``: the same as the ``narrate`` command."""

import sys

from player.cli.main import main

sys.exit(main())
