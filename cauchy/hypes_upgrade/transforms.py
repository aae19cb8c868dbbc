"""torchcv's augmentations (``aug_trans`` / ``train_trans``) and final sizing (``data_transformer``)
as Cauchy's transforms. torchcv sizes are ``[width, height]``, Cauchy's ``[height, width]``; torchcv's
``ratio`` is a probability (``p`` here); keypoint ``swap_pair`` are the data's own pairs here."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cauchy.hypes_upgrade.edit import MISSING, Editor

COLOR = ("random_brightness", "random_contrast", "random_saturation", "random_hue")
NO_EQUIVALENT = {
    "random_det_crop": "SSD's IoU-constrained crop has no equivalent here",
    "random_perm": "channel permutation has no equivalent here",
}

Spec = tuple[str, dict[str, Any]]
Pad = dict[str, Any]  # what padding transforms fill with: {"fill": the mean colour, "mask_fill": the ignore value}


def _hw(value: Any) -> Any:
    """torchcv ``[w, h]`` -> ``[h, w]`` (anything else unchanged, for validation to name)."""
    return [value[1], value[0]] if isinstance(value, list) and len(value) == 2 else value


def _always(ed: Editor, key: str, params: dict[str, Any]) -> None:
    ratio = params.pop("ratio", MISSING)
    if ratio is MISSING:
        return
    if ratio == 1 or ratio == 1.0:
        ed.translated(f"{key}.ratio", None, "1.0: applied to every sample, as here")
    else:
        ed.ignored(f"{key}.ratio", f"{ratio}: this transform has no probability here and is applied to every sample")


def _leftovers(ed: Editor, key: str, params: dict[str, Any], reason: str) -> None:
    for name in list(params):
        params.pop(name)
        ed.ignored(f"{key}.{name}", reason)


def hflip(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    out = _probability(ed, key, params)
    if params.pop("swap_pair", MISSING) is not MISSING:
        ed.translated(f"{key}.swap_pair", None, "the dataset's flip pairs: pose samples swap left and right joints "
                                                "by the data's keypoint names (its metadata flip_pairs)")
    return [("random_hflip", {**out, **params})]


def crop(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    _always(ed, key, params)
    method = params.pop("method", MISSING)
    name = "center_crop" if method == "center" else "random_crop"
    out: dict[str, Any] = {}
    if "crop_size" in params:
        out["size"] = _hw(params.pop("crop_size"))
        ed.translated(f"{key}.crop_size", f"{key}.size", "[w, h] -> [h, w]")
    if method not in ("random", "center", MISSING):
        ed.ignored(f"{key}.method", f"{method!r} crop (around a person or grid cell): a uniform random crop here")
    elif method is not MISSING:
        ed.translated(f"{key}.method", None, f"{method!r} -> {name}")
    out.update(fill)
    for extra in ("allow_outside_center", "grid", "center_jitter"):
        if params.pop(extra, MISSING) is not MISSING:
            ed.ignored(f"{key}.{extra}", "boxes partly outside the crop are clipped here (min_visible drops them)")
    return [(name, {**out, **params})]


def _probability(ed: Editor, key: str, params: dict[str, Any]) -> dict[str, Any]:
    """torchcv's ``ratio`` (a probability) as ``p``, for the transforms that have one here."""
    if "ratio" not in params:
        return {}
    ed.translated(f"{key}.ratio", f"{key}.p")
    return {"p": params.pop("ratio")}


def padding(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    out = _probability(ed, key, params)
    if "pad" in params:
        out["border"] = params.pop("pad")
        ed.translated(f"{key}.pad", f"{key}.border", "pad transform, [left, top, right, bottom]")
    if params.pop("allow_outside_center", MISSING) is not MISSING:
        ed.ignored(f"{key}.allow_outside_center", "padding keeps every box inside the image")
    return [("pad", {**out, **fill, **params})]


def random_pad(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    out = _probability(ed, key, params)
    if "up_scale_range" in params:
        out["ratio"] = params.pop("up_scale_range")
        ed.translated(f"{key}.up_scale_range", f"{key}.ratio", "random_expand (SSD zoom-out)")
    return [("random_expand", {**out, **fill, **params})]


def resize(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    if "min_side_length" in params:
        ed.translated(f"{key}.min_side_length", f"{key}.size", "resize_short")
        out: dict[str, Any] = {"size": params.pop("min_side_length")}
        if "max_side_length" in params:
            out["max_size"] = params.pop("max_side_length")
            ed.translated(f"{key}.max_side_length", f"{key}.max_size")
        return [("resize_short", {**out, **params})]
    if "target_size" in params:
        ed.translated(f"{key}.target_size", f"{key}.size", "[w, h] -> [h, w]")
        return [("resize", {"size": _hw(params.pop("target_size")), **params})]
    return [("resize", params)]


def random_resize(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    _always(ed, key, params)
    method = params.pop("method", "random")
    if method == "bound" and "resize_bound" in params:
        bound = params.pop("resize_bound")
        low, high = (list(bound) + [None, None])[:2] if isinstance(bound, list) else (bound, None)
        ed.translated(f"{key}.resize_bound", f"{key}.size", f"resize_short to {low}, long side at most {high}")
        _leftovers(ed, key, params, "a bound resize keeps the aspect ratio here")
        return [("resize_short", {"size": low, "max_size": high})]
    ed.translated(f"{key}.method", None, f"{method!r} -> random_scale")
    out: dict[str, Any] = {}
    if "scale_range" in params:
        out["scale"] = params.pop("scale_range")
        ed.translated(f"{key}.scale_range", f"{key}.scale")
    for extra, reason in (("aspect_range", "random_scale keeps the aspect ratio"),
                          ("target_size", "random_scale scales the image itself, not a person in it")):
        if params.pop(extra, MISSING) is not MISSING:
            ed.ignored(f"{key}.{extra}", reason)
    return [("random_scale", {**out, **params})]


def rotate(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    """A rotation about the image centre, the image keeping its size: ``random_affine`` with only a rotation."""
    _always(ed, key, params)
    out: dict[str, Any] = {}
    if "rotate_degree" in params:
        out["rotation"] = params.pop("rotate_degree")
        ed.translated(f"{key}.rotate_degree", f"{key}.rotation", "up to this many degrees either way")
    return [("random_affine", {**out, **fill, **params})]


def resized_crop(ed: Editor, key: str, params: dict[str, Any], fill: Pad) -> list[Spec]:
    _always(ed, key, params)
    out: dict[str, Any] = {}
    for old, new, convert in (("crop_size", "size", _hw), ("scale_range", "scale", None), ("aspect_range", "ratio", None)):
        if old in params:
            value = params.pop(old)
            out[new] = convert(value) if convert else value
            ed.translated(f"{key}.{old}", f"{key}.{new}")
    return [("random_resized_crop", {**out, **params})]


Rule = Callable[[Editor, str, dict[str, Any], Pad], list[Spec]]
# name -> (rule, the torchcv settings that make it fire; None: the name alone, unknown here)
RULES: dict[str, tuple[Rule, set[str] | None]] = {
    "random_hflip": (hflip, {"ratio", "swap_pair"}),
    "random_crop": (crop, {"crop_size", "ratio", "method", "allow_outside_center", "grid", "center_jitter"}),
    "padding": (padding, None),
    "random_pad": (random_pad, None),
    "resize": (resize, {"min_side_length", "max_side_length", "target_size"}),
    "random_resize": (random_resize, None),
    "random_resized_crop": (resized_crop, {"crop_size", "scale_range", "aspect_range"}),
    "random_rotate": (rotate, None),
}


def _fires(name: str, params: Any) -> bool:
    if name not in RULES or not isinstance(params, dict):
        return False
    triggers = RULES[name][1]
    return triggers is None or bool(triggers & set(params))


def color_jitter(ed: Editor, key: str, found: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """torchcv's four colour transforms (additive brightness shift, contrast and saturation ranges, hue
    shift in degrees) as one ``color_jitter`` (factors ``1 ± x``, hue in turns), approximately."""
    out: dict[str, Any] = {}
    for name, params in found.items():
        where = f"{key}.{name}"
        _always(ed, where, params)
        if name == "random_brightness" and "shift_value" in params:
            out["brightness"] = round(params.pop("shift_value") / 128, 4)
            ed.translated(f"{where}.shift_value", f"{key}.color_jitter.brightness", "shift / 128 (a factor around mid-grey)")
        elif name in ("random_contrast", "random_saturation") and {"lower", "upper"} <= set(params):
            field = name.removeprefix("random_")
            lower, upper = params.pop("lower"), params.pop("upper")
            out[field] = round(max(1 - lower, upper - 1), 4)
            for bound in ("lower", "upper"):
                ed.translated(f"{where}.{bound}", f"{key}.color_jitter.{field}", "factors 1 ± x")
        elif name == "random_hue" and "delta" in params:
            out["hue"] = round(min(0.5, params.pop("delta") / 360), 4)
            ed.translated(f"{where}.delta", f"{key}.color_jitter.hue", "degrees / 360")
        _leftovers(ed, where, params, "no such setting of color_jitter")
    return out


def translate_aug(ed: Editor, key: str, fill: Pad) -> None:
    """Rewrites the ``aug_trans`` at ``key`` in place."""
    aug = ed.get(key)
    if not isinstance(aug, dict):
        return
    seq, shuffled = aug.get("trans_seq", []), aug.pop("shuffle_trans_seq", [])
    if not isinstance(seq, list) or not isinstance(shuffled, list):
        return
    if shuffled:
        ed.translated(f"{key}.shuffle_trans_seq", f"{key}.trans_seq", "colour steps as one color_jitter first "
                                                                    "(it applies them in random order)")
    new_seq: list[str] = []
    new_aug: dict[str, Any] = {}
    colors: dict[str, dict[str, Any]] = {}
    for name in [*shuffled, *seq]:
        params = aug.pop(name, {})
        params = dict(params) if isinstance(params, dict) else params
        if name in COLOR and isinstance(params, dict):
            colors[name] = params
            if "color_jitter" not in new_seq:
                new_seq.append("color_jitter")
        elif name == "random_perm":
            ed.ignored(f"{key}.{name}", NO_EQUIVALENT[name])
        elif name in NO_EQUIVALENT:
            ed.ignored(f"{key}.{name}", NO_EQUIVALENT[name] + "; left out of trans_seq")
        elif _fires(name, params):
            for new_name, new_params in RULES[name][0](ed, f"{key}.{name}", params, fill):
                if new_name in new_aug:
                    ed.ignored(f"{key}.{name}", f"a second {new_name} in one sequence is not supported")
                    continue
                new_seq.append(new_name)
                new_aug[new_name] = new_params
                if new_name != name:
                    ed.translated(f"{key}.{name}", f"{key}.{new_name}")
        else:
            new_seq.append(name)
            if params != {}:
                new_aug[name] = params
    if colors:
        new_aug["color_jitter"] = color_jitter(ed, key, colors)
    for name in [n for n in aug if n != "trans_seq"]:
        aug.pop(name)
        ed.ignored(f"{key}.{name}", "settings of a transform not in trans_seq (torchcv did not apply it either)")
    aug["trans_seq"] = new_seq
    aug.update(new_aug)


def translate_transformer(ed: Editor, split: str, fill: Pad) -> None:
    """torchcv's ``data_transformer`` -> the final ``resize`` Cauchy's ``data_transformer`` makes, or a
    ``pad`` at the end of ``aug_trans`` (``align_method: only_pad``), or nothing (batch-level sizing)."""
    key = f"{split}.data_transformer"
    dt = ed.get(key)
    if not isinstance(dt, dict) or not ({"align_method", "pad_mode", "ms_input_size", "fit_stride"} & set(dt)
                                        or dt.get("size_mode") in ("max_size", "random_size", "multi_size")):
        return
    mode = dt.get("size_mode", "fix_size")
    align = dt.pop("align_method", "only_scale")
    pad_mode = dt.pop("pad_mode", MISSING)
    if dt.pop("fit_stride", MISSING) is not MISSING:
        ed.ignored(f"{key}.fit_stride", "the models here pad their input to their stride themselves")
    if mode == "multi_size" and "ms_input_size" in dt:
        sizes = dt.pop("ms_input_size")
        dt["size_mode"], dt["input_size"] = "fix_size", sizes[0] if isinstance(sizes, list) and sizes else sizes
        ed.translated(f"{key}.ms_input_size", f"{key}.input_size",
                      "the first size" + ("; the others are ignored (one input size here)"
                                          if isinstance(sizes, list) and len(sizes) > 1 else ""))
        mode = "fix_size"
    if mode in ("max_size", "random_size"):
        ed.pop(key)
        ed.translated(f"{key}.size_mode", None, f"{mode!r}: images keep their own size; detection batches are lists "
                                                "of images of any size")
        ed.translated(f"{key}.align_method", None, f"{align!r}: no batch-level padding needed")
        if pad_mode is not MISSING:
            ed.ignored(f"{key}.pad_mode", "no batch-level padding here")
        return
    if align == "only_pad" and "input_size" in dt:
        size = dt.pop("input_size")
        ed.pop(key)
        position = "random" if pad_mode == "random" else "right_down"
        aug = ed.get(f"{split}.aug_trans")
        if not isinstance(aug, dict):
            aug = {"trans_seq": []}
            ed.put(f"{split}.aug_trans", aug)
        if dt.get("size_mode") is not None:
            ed.translated(f"{key}.size_mode", None, f"{mode!r} with only_pad: images are padded, not resized")
        if "pad" in aug.get("trans_seq", []):
            for name in ("align_method", "input_size"):
                ed.ignored(f"{key}.{name}", "'only_pad': the sequence already has a pad step (one per sequence "
                                            "here); size the images there")
            return
        aug.setdefault("trans_seq", []).append("pad")
        aug["pad"] = {"size": _hw(size), "position": position, **fill}
        ed.translated(f"{key}.align_method", f"{split}.aug_trans.pad", "'only_pad': pad up to input_size, last")
        ed.translated(f"{key}.input_size", f"{split}.aug_trans.pad.size", "[w, h] -> [h, w]")
        if pad_mode is not MISSING:
            ed.translated(f"{key}.pad_mode", f"{split}.aug_trans.pad.position", f"{pad_mode!r} -> {position!r}")
        return
    if align == "scale_and_pad":
        dt["size_mode"] = "keep_ratio"
    ed.translated(f"{key}.align_method", f"{key}.size_mode",
                  f"{align!r} -> {'keep_ratio' if align == 'scale_and_pad' else 'fix_size'}")
    if pad_mode is not MISSING:
        ed.ignored(f"{key}.pad_mode", "keep_ratio pads right and down here")
