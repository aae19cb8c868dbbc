"""``python -m services``: the same as ``cauchy serve``."""
import sys

from services.cli import main

sys.exit(main(["serve", *sys.argv[1:]]))
