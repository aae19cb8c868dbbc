from cauchy.models.cls import small_cnn, torchvision_models  # noqa: F401
