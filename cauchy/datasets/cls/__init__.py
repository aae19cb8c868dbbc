"""Classification readers; each module registers itself in ``DATASETS`` when that registry is first read."""
