"""Models per task; importing this package registers every module in it (one package per task)."""
from cauchy.registry import import_submodules

import_submodules(__name__, __path__)
