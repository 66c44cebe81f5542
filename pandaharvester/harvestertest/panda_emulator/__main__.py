"""``python -m pandaharvester.harvestertest.panda_emulator``."""

import sys

from .cli import main

sys.exit(main())
