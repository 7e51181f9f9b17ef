"""``python -m semparts_reid.cli`` runs the command line, as ``python -m semparts_reid`` does."""

from .main import main

if __name__ == "__main__":
    raise SystemExit(main())
