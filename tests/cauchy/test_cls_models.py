"""Every registered classification model builds with a new head and runs on a tiny input."""
import pytest
import torch

import cauchy.models  # noqa: F401
from cauchy.models.cls.torchvision_models import ARCHITECTURES
from cauchy.registry import MODELS, UnknownComponentError

CLS_MODELS = ["small_cnn", *ARCHITECTURES]


@pytest.mark.parametrize("name", CLS_MODELS)
def test_forward_shape_and_finite(name):
    torch.manual_seed(0)
    model = MODELS.build(name, num_classes=7).eval()
    size = 8 if name == "small_cnn" else 32
    with torch.no_grad():
        out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


def test_unknown_model_lists_valid_names():
    with pytest.raises(UnknownComponentError, match=r"unknown model 'resnet19'; valid: .*resnet18.*small_cnn"):
        MODELS.get("resnet19")
