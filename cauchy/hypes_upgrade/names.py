"""torchcv's component names and what each is called here (the tables of the translation)."""
from __future__ import annotations

# torchcv method -> Cauchy method
METHODS = {
    "fc_classifier": "image_classifier",
    "single_shot_detector": "ssd",
    "faster_rcnn": "faster_rcnn",
    "open_pose": "openpose",
}

# (task, torchcv model_name) -> (Cauchy model, note when it is not the same network)
MODELS: dict[tuple[str, str], tuple[str, str]] = {
    ("cls", "shufflenetv2"): ("shufflenet_v2_x1_0", ""),
    ("det", "faster_rcnn"): ("fasterrcnn_resnet50_fpn", "torchvision's Faster R-CNN with a ResNet-50 FPN "
                                                        "stands in for torchcv's VGG16 Faster R-CNN"),
    ("det", "fpn_rcnn"): ("fasterrcnn_resnet50_fpn", "torchvision's Faster R-CNN with a ResNet-50 FPN"),
    ("det", "darknet_yolov3"): ("yolov3_darknet53", ""),
    ("det", "vgg300_ssd"): ("ssd300_vgg16", "torchvision's SSD300 VGG16"),
    ("det", "vgg512_ssd"): ("ssd300_vgg16", "torchvision's SSD300 VGG16 (there is no SSD512 here)"),
    ("seg", "deeplabv3"): ("deeplabv3_resnet50", "torchvision's DeepLabV3 with a ResNet-50"),
    ("pose", "open_pose"): ("openpose_vgg19", "the paper's VGG-19 OpenPose"),
}

# seg models here that take a dilated ResNet by name (``backbone``) and its ``output_stride``
DILATED_SEG_MODELS = ("pspnet", "denseaspp")
DILATED_BACKBONES = ("resnet50", "resnet101")

# torchcv loss_type -> Cauchy loss ("none": the model computes its own)
LOSSES = {
    "fc_ce_loss": "ce",
    "ce_loss": "ce",
    "fs_ce_loss": "cross_entropy",
    "fs_auxce_loss": "cross_entropy",
    "fs_auxohemce_loss": "ohem_cross_entropy",
    "fs_ohemce_loss": "ohem_cross_entropy",
    "yolov3_loss": "yolov3",
    "ssd_multibox_loss": "none",
    "fr_loss": "none",
    "op_mse_loss": "openpose_mse",
}

# torchcv lr_policy -> (Cauchy lr_policy, extra settings of that policy)
LR_POLICIES: dict[str, tuple[str, dict[str, float]]] = {
    "lambda_poly": ("poly", {}),
    "lambda_linear": ("poly", {"power": 1.0}),
    "lambda_cosine": ("cosine", {}),
    "lambda_fixed": ("fixed", {}),
}

# task -> (data.format for torchcv's files of that task, its data.params, what it reads)
DATA_FORMATS: dict[str, tuple[str, dict[str, str], str]] = {
    "cls": ("label_json", {}, "torchcv's on-disk layout for cls"),
    "det": ("torchcv_json", {}, "torchcv's on-disk layout for det"),
    "seg": ("mask_folder", {"image_dir": "{split}/image", "mask_dir": "{split}/label"},
            "torchcv's on-disk layout for seg"),
    "pose": ("coco_keypoints", {"samples": "image", "image_dir": "{split}/image"},
             "whole images with all their people (bottom-up, as torchcv's OpenPose trains), images in torchcv's "
             "{split}/image, annotations as COCO keypoints JSON (annotations/person_keypoints_{split}.json): "
             "torchcv's per-image {split}/json files are not read here"),
}

# torchcv's OpenPose grouping thresholds (``res``) -> ``target.grouping`` here
GROUPING = {
    "part_threshold": "peak_thresh",
    "limb_threshold": "min_dot",
    "mid_point_num": "samples",
    "limb_pos_ratio": "min_aligned",
    "num_threshold": "min_parts",
    "avg_threshold": "min_mean_score",
}
