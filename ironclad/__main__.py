"""``python -m ironclad``: the same as ``python run.py``."""

from ironclad.cli import main

raise SystemExit(main())
