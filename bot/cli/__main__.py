"""``python -m bot.cli`` runs the jamgen command line."""

import sys

from bot.cli import main

sys.exit(main())
