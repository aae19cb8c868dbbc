"""Dataset readers and transforms; importing this package fills ``DATASETS`` and ``TRANSFORMS``
(every module in it is imported)."""
from cauchy.registry import import_submodules

import_submodules(__name__, __path__)
