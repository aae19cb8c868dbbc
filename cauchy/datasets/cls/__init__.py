"""Classification readers; importing this package registers them in ``DATASETS``."""
from cauchy.datasets.cls import csv_list, image_folder, label_json, txt_list  # noqa: F401
