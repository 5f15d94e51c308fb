"""Start an Ironclad node: ``python run.py [--config FILE] [--data-dir DIR] ...``."""

from ironclad.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
