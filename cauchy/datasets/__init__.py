"""Dataset readers and transforms. Their modules register themselves when ``DATASETS`` or
``TRANSFORMS`` is first read (``cauchy.registry``), not on importing this package: the torch-free
format tools below it (``cauchy.datasets.tools``) are imported by the control service."""
