"""Pose models; importing this package registers every module in it in ``MODELS``."""
from cauchy.registry import import_submodules

import_submodules(__name__, __path__)
