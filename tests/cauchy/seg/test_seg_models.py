"""Every registered seg model: logits at the input size, an aux output in training where it has an
aux head; the losses: ignored pixels take no part, OHEM keeps the hard pixels, Dice is 0 when perfect."""
from __future__ import annotations

import pytest
import torch

import cauchy.models  # noqa: F401
from cauchy.registry import LOSSES, MODELS

SMALL = {"pspnet": {"backbone": "resnet18", "output_stride": 32},
         "denseaspp": {"backbone": "resnet18", "output_stride": 32, "aux_weight": 0.4},
         "lraspp": {"backbone": "mobilenet_v3_small"},
         "tiny_unet": {},
         "deeplabv3_mobilenet_v3_large": {},
         "deeplabv3_resnet50": {}}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SMALL))
def test_model_outputs(name: str) -> None:
    model = MODELS.build(name, num_classes=4, **SMALL[name])
    images = torch.randn(2, 3, 48, 56)
    out = model.train()(images)
    assert out["out"].shape == (2, 4, 48, 56)
    assert ("aux" in out) == (model.aux_weight > 0)
    if "aux" in out:
        assert out["aux"].shape == (2, 4, 48, 56)
    (out["out"].mean() + out.get("aux", out["out"]).mean()).backward()
    with torch.no_grad():
        assert set(model.eval()(images)) == {"out"}


def test_dilated_backbone_refuses_basic_block_dilation() -> None:
    with pytest.raises(ValueError, match="cannot be dilated"):
        MODELS.build("pspnet", num_classes=3, backbone="resnet18", output_stride=8)


@pytest.mark.parametrize("name", ["cross_entropy", "ohem_cross_entropy", "dice"])
def test_ignored_pixels_do_not_count(name: str) -> None:
    loss = LOSSES.build(name)
    logits = torch.randn(1, 3, 4, 4)
    target = torch.randint(0, 3, (1, 4, 4))
    target[0, :2] = 255
    changed = logits.clone()
    changed[0, :, :2] = torch.randn(3, 2, 4) * 10  # only ignored pixels differ
    assert float(loss(logits, target)) == pytest.approx(float(loss(changed, target)), rel=1e-6)
    assert float(loss(logits, torch.full_like(target, 255))) == 0.0


def test_class_weights_and_ohem_and_dice() -> None:
    logits = torch.zeros(1, 2, 1, 4)
    logits[0, 0, 0, :2] = 5.0  # pixels 0, 1 confidently class 0; pixels 2, 3 undecided
    target = torch.tensor([[[0, 0, 1, 1]]])
    plain = float(LOSSES.build("cross_entropy")(logits, target))
    weighted = float(LOSSES.build("cross_entropy", class_weights=[0.0, 1.0])(logits, target))
    assert weighted == pytest.approx(float(torch.log(torch.tensor(2.0))), rel=1e-6) and weighted > plain
    ohem = LOSSES.build("ohem_cross_entropy", thresh=0.7, min_kept=1)(logits, target)
    assert float(ohem) == pytest.approx(weighted, rel=1e-6)  # only the two undecided pixels are hard
    perfect = torch.zeros(1, 2, 1, 4)
    perfect[0, 0, 0, :2] = perfect[0, 1, 0, 2:] = 50.0
    assert float(LOSSES.build("dice")(perfect, target)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="class_weights"):
        LOSSES.build("cross_entropy", class_weights=[1.0])(logits, target)
