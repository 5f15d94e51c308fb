"""``python -m simulator --host 127.0.0.1 --port 8765 --seed 1 [--config venue.toml]``."""

import sys

from simulator.server import main

sys.exit(main())
