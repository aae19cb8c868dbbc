"""The translation of each torchcv hypes section, in the order :func:`cauchy.hypes_upgrade.upgrade`
applies them. Each rule fires only on keys or values Cauchy's own schema refuses, so a Cauchy file
passes through untouched."""
from __future__ import annotations

import re
from typing import Any

from cauchy.hypes_upgrade import names
from cauchy.hypes_upgrade.edit import MISSING, Editor
from cauchy.hypes_upgrade.transforms import translate_aug, translate_transformer

SPLITS = ("train", "val", "test")
RUN_DIR = "checkpoints and logs go to the run directory (--tmp_dir, the job directory under the service)"


def relocate(ed: Editor) -> None:
    """Older files keep ``lr``, ``optim``, ``normalize``, ``*_trans`` and ``checkpoints`` at the top."""
    ed.move("lr", "solver.lr")
    ed.move("optim", "solver.optim")
    ed.move("normalize", "data.normalize")
    ed.move("trans_params.normalize", "data.normalize")
    ed.drop_rest("trans_params", "no such setting here")
    for split in SPLITS:
        ed.move(f"{split}_trans", f"{split}.aug_trans")
    ed.move("checkpoints.checkpoints_name", "network.checkpoints_name")
    ed.move("checkpoints.save_iters", "solver.checkpoint.every", note="iterations")
    ed.drop("checkpoints.checkpoints_dir", RUN_DIR)
    ed.drop_rest("checkpoints", "no such setting here")
    ed.move("nms.overlap_threshold", "res.nms_iou")
    ed.drop("nms.mode", "NMS here is the standard (union) one")
    ed.drop_rest("nms", "no such setting here")
    for section in ("rpn", "roi", "fr_loss"):
        ed.drop_rest(section, "torchvision's Faster R-CNN uses its own defaults for these (network.params sets them)")
    ed.move("heatmap", "target.heatmap")


def rgb_order(ed: Editor) -> Any:
    """``input_mode: BGR`` files give means in BGR order: images are RGB here, so the lists are reversed.
    Returns ``mean_value`` (the padding fill, in RGB; None when absent) for the transforms."""
    bgr = ed.get("data.input_mode") == "BGR"
    if bgr:
        ed.pop("data.input_mode")
        ed.translated("data.input_mode", None, "'BGR': images are read as RGB here; per-channel lists reversed")
    for key in ("data.normalize.mean", "data.normalize.std"):
        value = ed.get(key)
        if bgr and isinstance(value, list):
            ed.pop(key)
            ed.put(key, value[::-1])
            ed.translated(key, key, "reversed to RGB order")
    fill = MISSING
    for key in ("data.mean_value", "data.normalize.mean_value"):
        value = ed.pop(key)
        if value is not MISSING:
            fill = value[::-1] if bgr and isinstance(value, list) else value
            ed.translated(key, "fill of pad/crop/expand transforms", "the padding colour" + (", RGB order" if bgr else ""))
    if ed.has("data.image_tool") and ed.get("data.image_tool") != "cv2":
        ed.drop("data.image_tool", "images are decoded with OpenCV here, as RGB")
    return None if fill is MISSING else fill


def data(ed: Editor, task: str) -> None:
    if not ed.has("data.format") and task in names.DATA_FORMATS:
        fmt, params, note = names.DATA_FORMATS[task]
        ed.put("data.format", fmt)
        for name, value in params.items():
            ed.put(f"data.params.{name}", value)
        ed.translated("data.format", "data.format", f"{fmt!r}: {note} (set data.format for another)")
    ed.drop("data.keep_difficult", "difficult objects are kept, flagged, and left out of VOC AP")
    if ed.get("data.format") == "mask_folder":
        ed.move("data.label_list", "data.params.label_ids", note="the raw mask value of each class")
    ed.drop("data.label_list", "this reader takes mask values as class indices; map the raw ids when preparing the data")
    ed.drop("data.reduce_zero_label", "mask values are class indices here; shift them when preparing the data")
    ed.drop("data.num_kpts", "the reader counts the keypoints of the annotations")


def details(ed: Editor, task: str) -> None:
    names_seq = ed.pop("details.name_seq")
    if names_seq is not MISSING:
        ed.put("data.class_names", names_seq)
        ed.translated("details.name_seq", "data.class_names")
        count = ed.get("data.num_classes")
        if isinstance(names_seq, list) and count == len(names_seq) + 1:
            ed.pop("data.num_classes")
            ed.put("data.num_classes", len(names_seq))
            ed.translated("data.num_classes", "data.num_classes", f"{count} -> {len(names_seq)}: torchcv counted the "
                                                                  "background; classes here are the named ones")
    for key, reason in (("color_list", "drawing colours are Cauchy's own palette"),
                        ("name_id_dict", "category ids come from the annotations"),
                        ("coco_cat_seq", "category ids come from the annotations"),
                        ("pose_name_seq", "keypoint names come from the annotations"),
                        ("pose_id_dict", "keypoint names come from the annotations"),
                        ("coco_to_ours", "keypoints keep COCO's order here"),
                        ("ours_to_coco", "keypoints keep COCO's order here"),
                        ("limb_seq", "skeletons come from the annotations"),
                        ("mini_tree", "no such setting here"),
                        ("map_index", "no such setting here")):
        ed.drop(f"details.{key}", reason)


def pose_target(ed: Editor, task: str) -> None:
    """torchcv's ``target.heatmap`` (``heatmap`` in older files, moved there by :func:`relocate`) and
    ``target.paf``: ``sigma`` in input pixels becomes output cells (divided by ``network.stride``), the
    PAF half-width ``theta`` (output cells, under ``heatmap`` in the published files) ``paf_width``."""
    if task != "pose":
        return
    stride = ed.get("network.stride", 8)
    stride = stride if isinstance(stride, (int, float)) and not isinstance(stride, bool) and stride > 0 else 8
    sigma = ed.pop("target.heatmap.sigma")
    if isinstance(sigma, (int, float)) and not isinstance(sigma, bool):
        ed.put("target.sigma", sigma / stride)
        ed.translated("target.heatmap.sigma", "target.sigma", f"{sigma} input pixels / stride {stride} -> "
                                                              f"{sigma / stride:g} output cells")
    elif sigma is not MISSING:
        ed.put("target.sigma", sigma)
        ed.translated("target.heatmap.sigma", "target.sigma")
    if ed.get("method") == "openpose":
        for key in ("target.paf.theta", "target.heatmap.theta"):
            ed.move(key, "target.paf_width", note="the limb's half-width in output cells, as in torchcv")
    method = ed.pop("target.heatmap.method")
    if method == "gaussian":
        ed.translated("target.heatmap.method", None, "'gaussian': heatmaps are Gaussians here")
    elif method is not MISSING:
        ed.ignored("target.heatmap.method", f"{method!r}: heatmaps are Gaussians here")
    for section in ("target.heatmap", "target.paf"):
        ed.drop_rest(section, "no such target setting here")
        if ed.get(section) == {}:
            ed.pop(section)


def backbone_name(value: Any) -> str | None:
    """``deepbase_resnet101_dilated8`` -> ``resnet101``."""
    match = re.search(r"resnet(50|101)", value) if isinstance(value, str) else None
    return f"resnet{match.group(1)}" if match else None


def network(ed: Editor, task: str) -> None:
    model = ed.get("network.model_name")
    backbone = ed.pop("network.backbone")
    if isinstance(model, str) and (task, model) in names.MODELS:
        new, note = names.MODELS[(task, model)]
        ed.pop("network.model_name")
        ed.put("network.model_name", new)
        ed.translated("network.model_name", "network.model_name", f"{model!r} -> {new!r}" + (f": {note}" if note else ""))
        model = new
    if backbone is not MISSING:
        resnet = backbone_name(backbone)
        if model in names.DILATED_SEG_MODELS and resnet in names.DILATED_BACKBONES:
            ed.put("network.params.backbone", resnet)
            ed.translated("network.backbone", "network.params.backbone", f"{backbone!r} -> {resnet!r} (dilated)")
        else:
            ed.ignored("network.backbone", f"{backbone!r}: the backbone is part of the model {model!r} here")
    stride = ed.pop("network.stride")
    if stride is not MISSING:
        if model in names.DILATED_SEG_MODELS:
            ed.put("network.params.output_stride", stride)
            ed.translated("network.stride", "network.params.output_stride")
        else:
            ed.ignored("network.stride", f"the output stride is fixed by the model {model!r}")
    bn = ed.pop("network.bn_type")
    if bn is not MISSING:
        ed.ignored("network.bn_type", f"{bn!r}: a job trains on one device here, with the model's own batch norm")
    if model == "openpose_vgg19":
        openpose_heads(ed)
    ed.drop("network.checkpoints_dir", RUN_DIR)
    ed.drop("network.resume", "resume with --resume (the service: resume the job)")
    for key in ("multi_grid", "pooled_size", "model_scale", "shuffle_group", "use_drop", "stride_list",
                "num_feature_list", "head_index_list", "paf_out", "heatmap_out", "loss_weights"):
        ed.drop(f"network.{key}", f"an architecture setting of torchcv's own network; {model!r} here defines its own")


def openpose_heads(ed: Editor) -> None:
    """torchcv's OpenPose sizes: ``paf_out`` (two channels per limb) is ``num_limbs`` here (checked against
    the data's skeleton before training); one ``loss_weights`` entry per stage, the stage count."""
    paf_out = ed.pop("network.paf_out")
    if isinstance(paf_out, int) and paf_out > 0 and paf_out % 2 == 0:
        ed.put("network.params.num_limbs", paf_out // 2)
        ed.translated("network.paf_out", "network.params.num_limbs", f"{paf_out} channels -> {paf_out // 2} limbs")
    elif paf_out is not MISSING:
        ed.ignored("network.paf_out", f"{paf_out!r}: not two channels per limb; set network.params.num_limbs")
    ed.drop("network.heatmap_out", "one heatmap per keypoint of the data here (torchcv added a background map)")
    weights = ed.pop("network.loss_weights")
    if isinstance(weights, list) and weights and all(w == 1 for w in weights):
        ed.put("network.params.stages", len(weights))
        ed.translated("network.loss_weights", "network.params.stages", f"{len(weights)} stages, each weighted 1 as here")
    elif weights is not MISSING:
        ed.ignored("network.loss_weights", f"{weights}: every stage has weight 1 here; its length is "
                                           "network.params.stages")


def solver(ed: Editor) -> None:
    ed.move("solver.display_iters", "solver.display_iter")
    ed.move("solver.save_iters", "solver.checkpoint.every", note="iterations")
    lr = "solver.lr"
    policy = ed.get(f"{lr}.lr_policy")
    if isinstance(policy, str) and policy in names.LR_POLICIES:
        new, extra = names.LR_POLICIES[policy]
        ed.pop(f"{lr}.lr_policy")
        ed.put(f"{lr}.lr_policy", new)
        for name, value in extra.items():
            ed.put(f"{lr}.{new}.{name}", value)
        ed.translated(f"{lr}.lr_policy", f"{lr}.lr_policy", f"{policy!r} -> {new!r}"
                      + "".join(f", {name} {value}" for name, value in extra.items()))
    warm = ed.pop(f"{lr}.is_warm")
    if warm is False:
        ed.drop(f"{lr}.warm", "is_warm is false")
        ed.translated(f"{lr}.is_warm", None, "false: no warm-up")
    elif warm is not MISSING:
        ed.translated(f"{lr}.is_warm", f"{lr}.warm", "true: the warm-up below")
    ed.drop(f"{lr}.warm.warm_epoch", "warm-up counts iterations here: set solver.lr.warm.warm_iters")
    freeze = ed.pop(f"{lr}.warm.freeze_backbone")
    if freeze is not MISSING:
        if freeze:
            ed.ignored(f"{lr}.warm.freeze_backbone", "true: freeze for the whole run with network.freeze instead")
        else:
            ed.translated(f"{lr}.warm.freeze_backbone", None, "false: nothing frozen")
    for key in ("mode", "threshold", "thre_mode", "cooldown", "eps"):
        ed.drop(f"{lr}.plateau.{key}", "the plateau schedule here watches the main metric with its own thresholds")


def test_interval(ed: Editor) -> None:
    """torchcv's ``test_interval`` counts iterations; here it counts in ``solver.lr.metric``. Applied
    only to a file already known to be torchcv's (the same key is Cauchy's too)."""
    metric = ed.get("solver.lr.metric", "epoch")
    interval = ed.get("solver.test_interval")
    if metric == "epoch" and isinstance(interval, int) and interval > 1:
        ed.pop("solver.test_interval")
        ed.put("solver.test_interval", 1)
        ed.translated("solver.test_interval", "solver.test_interval",
                      f"{interval} iterations -> every epoch: test_interval counts in solver.lr.metric here")


def loss(ed: Editor) -> None:
    old = ed.get("loss.loss_type")
    if not isinstance(old, str) or old not in names.LOSSES:
        return
    new = names.LOSSES[old]
    ed.pop("loss.loss_type")
    ed.put("loss.loss_type", new)
    ed.translated("loss.loss_type", "loss.loss_type", f"{old!r} -> {new!r}" + (" (the model computes its own loss)"
                                                                               if new == "none" else ""))
    params = "loss.params"
    reduction = ed.pop(f"{params}.ce_reduction")
    if reduction in ("mean", "elementwise_mean"):
        ed.translated(f"{params}.ce_reduction", None, f"{reduction!r}: the mean, as here")
    elif reduction is not MISSING:
        ed.ignored(f"{params}.ce_reduction", f"{reduction!r}: losses here are means")
    if new == "openpose_mse":
        reduction = ed.pop(f"{params}.mse_reduction")
        if reduction in ("mean", "elementwise_mean"):
            ed.translated(f"{params}.mse_reduction", None, f"{reduction!r}: the mean, as here")
        elif reduction is not MISSING:
            ed.ignored(f"{params}.mse_reduction", f"{reduction!r}: the loss here is the mean over cells, "
                                                  "so its gradients are smaller; raise base_lr to match")
    if new == "ce":
        ed.move(f"{params}.ce_weight", f"{params}.weight")
        ed.drop(f"{params}.ce_ignore_index", "class labels have no ignore value")
    elif new in ("cross_entropy", "ohem_cross_entropy"):
        ed.move(f"{params}.ce_weight", f"{params}.class_weights")
        ignore = ed.pop(f"{params}.ce_ignore_index")
        if ignore == -1:
            ed.translated(f"{params}.ce_ignore_index", None, "-1: torchcv's name for the masks' 255, which is "
                                                             "the ignore value here (data.params.ignore_index)")
        elif ignore is not MISSING:
            ed.put(f"{params}.ignore_index", ignore)
            ed.translated(f"{params}.ce_ignore_index", f"{params}.ignore_index")
        ed.move(f"{params}.ohem_thresh", f"{params}.thresh")
        ed.move(f"{params}.ohem_minkeep", f"{params}.min_kept")
        aux = ed.pop("loss.loss_weights.aux_loss")
        if aux is not MISSING:
            ed.put("network.params.aux_weight", aux)
            ed.translated("loss.loss_weights.aux_loss", "network.params.aux_weight")
        seg = ed.pop("loss.loss_weights.seg_loss")
        if seg in (1, 1.0):
            ed.translated("loss.loss_weights.seg_loss", None, "1.0: the main loss's weight here")
        elif seg is not MISSING:
            ed.ignored("loss.loss_weights.seg_loss", f"{seg}: the main loss has weight 1 here; scale base_lr instead")
    elif new == "yolov3":
        for old_key, new_key in (("coord_loss", "box_weight"), ("obj_loss", "obj_weight"), ("cls_loss", "cls_weight")):
            ed.move(f"loss.loss_weights.{old_key}", f"{params}.{new_key}")
        ed.move("anchor.iou_threshold", f"{params}.ignore_iou", note="predictions overlapping a box this much are not "
                                                                     "negatives")
    ed.drop_rest("loss.loss_weights", "no such weight in this loss")
    if new == "none":
        ed.drop_rest(params, "the model computes its own loss")


def evaluation(ed: Editor, task: str) -> None:
    """``val.use_07_metric``, ``test.mode``/``scale_search``/``input_size`` and the det ``res`` section."""
    use07 = ed.pop("val.use_07_metric")
    if use07 is True:
        ed.put("val.evaluator", "voc")
        ed.translated("val.use_07_metric", "val.evaluator", "'voc' (VOC AP@0.5, the all-point area, not 11 points)")
    elif use07 is not MISSING:
        ed.translated("val.use_07_metric", None, "false: the method's default evaluator")
    mode = ed.get("test.mode")
    if mode in ("ss_test", "ms_test", "mscrop_test", "sscrop_test"):
        ed.pop("test.mode")
        if task == "seg":
            ed.put("test.mode", "whole")
        ed.translated("test.mode", "test.mode" if task == "seg" else None,
                      f"{mode!r} -> whole-image inference" + ("" if mode == "ss_test" else " at one scale"))
    scales = ed.pop("test.scale_search")
    if scales in ([1], [1.0]):
        ed.translated("test.scale_search", None, "[1.0]: one scale, as here")
    elif scales is not MISSING:
        ed.ignored("test.scale_search", f"{scales}: inference here is at one scale")
    size = ed.pop("test.input_size")
    if size is not MISSING and not ed.has("test.data_transformer"):
        ed.put("test.data_transformer", {"size_mode": "fix_size", "input_size": size})
        ed.translated("test.input_size", "test.data_transformer.input_size")
    elif size is not MISSING:
        ed.ignored("test.input_size", "test.data_transformer already sizes the test images")
    for key in ("min_side_length", "resize_bound"):
        value = ed.pop(f"test.{key}")
        if value is MISSING:
            continue
        short, long = (list(value) + [None])[:2] if key == "resize_bound" and isinstance(value, list) else (value, None)
        aug = ed.get("test.aug_trans")
        if not isinstance(aug, dict):
            aug = {"trans_seq": []}
            ed.put("test.aug_trans", aug)
        aug.setdefault("trans_seq", []).insert(0, "resize_short")
        aug["resize_short"] = {"size": short, **({"max_size": long} if long else {})}
        ed.translated(f"test.{key}", "test.aug_trans.resize_short")
    ed.drop("test.fit_stride", "the models here pad their input to their stride themselves")
    ed.move("res.nms.max_threshold", "res.nms_iou")
    ed.drop("res.nms.mode", "NMS here is the standard (union) one")
    ed.drop("res.nms.pre_nms", "boxes before NMS are the model's own number")
    ed.drop_rest("res.nms", "no such setting here")
    ed.move("res.val_conf_thre", "res.score_thresh")
    ed.move("res.max_per_image", "res.max_dets")
    ed.drop("res.vis_conf_thre", "pictures show the detections above res.score_thresh")
    ed.drop("res.cls_keep_num", "boxes per class are not capped here, only res.max_dets per image")
    anchors = ed.pop("anchor.anchors_list")
    if anchors is not MISSING:
        ed.put("anchor.anchors", anchors[::-1] if isinstance(anchors, list) else anchors)
        ed.translated("anchor.anchors_list", "anchor.anchors", "reversed: the finest scale (stride 8) first here")
    if ed.get("method") in ("ssd", "faster_rcnn", "retinanet"):
        ed.drop_rest("anchor", "torchvision's detectors make their own anchors (network.params sets them)")
    if task == "pose":  # the grouping thresholds are under ``res`` in newer files, ``vis`` in older ones
        for section in ("res", "vis"):
            for old, new in names.GROUPING.items():
                ed.move(f"{section}.{old}", f"target.grouping.{new}", note="OpenPose's grouping threshold")
        for key in ("vis_stick_width", "vis_circle_radius"):
            ed.drop(f"res.{key}", "drawing settings of torchcv's OpenPose; skeletons are drawn by the method here")
    ed.drop_rest("vis", "drawing settings of torchcv's visualiser; predictions are drawn by the method here")
    if ed.get("res") == {} and task != "det":
        ed.pop("res")


def transforms(ed: Editor, task: str, fill: Any) -> None:
    """torchcv padded images with ``mean_value`` and masks with its ignore label (255 in the files)."""
    pad = {**({"fill": fill} if fill is not None else {}), **({"mask_fill": 255} if task == "seg" else {})}
    for split in SPLITS:
        translate_aug(ed, f"{split}.aug_trans", pad)
        translate_transformer(ed, split, pad)


def logging_section(ed: Editor) -> None:
    level = ed.pop("logging.stdout_level")
    if level is not MISSING:
        ed.put("logging.log_level", level)
        ed.translated("logging.stdout_level", "logging.log_level")
    ed.drop("logging.logfile_level", "the run's log is its stdout (stdout.log in the job directory), at log_level")
    ed.drop("logging.log_file", "the run's log is its stdout (stdout.log in the job directory)")
    ed.drop("logging.log_format", "log lines have Cauchy's format")
    ed.drop("logging.rewrite", "every run writes its own run directory")


def method(ed: Editor) -> None:
    old = ed.get("method")
    if isinstance(old, str) and old in names.METHODS and names.METHODS[old] != old:
        ed.pop("method")
        ed.put("method", names.METHODS[old])
        ed.translated("method", "method", f"{old!r} -> {names.METHODS[old]!r}")
