"""Write a synthetic pose set of stick figures in COCO keypoints format.

    python scripts/pose/sticks/prepare.py --out data/pose_sticks [--train 8] [--val 4] [--size 160]
                                          [--seed 0] [--single]

Each figure is a skeleton of 14 named joints (``head``, ``neck`` and left/right shoulder, elbow,
wrist, hip, knee, ankle) in a random pose (joint angles within human-like ranges) at a random
scale, drawn as thick limbs on muted, cluttered backgrounds: left limbs in one colour, right
limbs in another and the trunk in a third, so left and right can be told apart (as a face or a
chest tells them on people). Several figures per image (one to four; ``--single``: one figure per
image, large and centred, for single-person sets and PCK). Occlusions: a grey rectangle over part
of some figures turns the joints it hides to visibility 1 (labelled, not visible); joints outside
the image are unlabelled (0, 0, 0), as COCO writes them. Layout:

    OUT/images/<id>.jpg
    OUT/annotations/person_keypoints_{train,val}.json   COCO keypoints: category 1 ``person`` with
        ``keypoints`` (the joint names), ``skeleton`` (1-based joint pairs, as COCO's) and, beyond
        COCO, ``sigmas`` (the per-joint OKS constants); each annotation has ``keypoints`` (x, y, v
        triplets, continuous pixel coordinates: pixel column i covers [i, i + 1)), ``num_keypoints``,
        ``bbox`` (the labelled joints' extent, padded by the limb width and head), ``area`` (the box's)
        and ``head_size`` (the head-to-neck length times 2, for PCKh)

The same arguments always give the same files. Defaults are tiny, for tests; the benchmark asks
for more.
"""
from __future__ import annotations

import argparse
import json
import math
import os

import cv2
import numpy as np

JOINTS = ["head", "neck", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist",
          "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
SKELETON = [("head", "neck"), ("neck", "left_shoulder"), ("neck", "right_shoulder"),
            ("left_shoulder", "left_elbow"), ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"),
            ("right_elbow", "right_wrist"), ("neck", "left_hip"), ("neck", "right_hip"), ("left_hip", "right_hip"),
            ("left_hip", "left_knee"), ("right_hip", "right_knee"), ("left_knee", "left_ankle"),
            ("right_knee", "right_ankle")]
SIGMAS = [0.06, 0.079, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089]
COLOURS = {"left": (40, 90, 235), "right": (235, 60, 40), "trunk": (245, 225, 60)}  # RGB
J = {name: i for i, name in enumerate(JOINTS)}


def background(gen: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A muted RGB backdrop: smooth colour blobs, a few faint straight strokes (limb-like clutter) and noise."""
    low = gen.uniform(40, 150, size=(3, 3, 3)).astype(np.float32)
    image = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(int(gen.integers(0, 4))):
        p, q = gen.uniform(0, [w, h], size=(2, 2))
        cv2.line(image, tuple(int(v) for v in p), tuple(int(v) for v in q), tuple(float(v) for v in gen.uniform(40, 160, 3)),
                 int(gen.integers(1, 3)), cv2.LINE_AA)
    image += gen.normal(0, 5, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def figure(gen: np.random.Generator, cx: float, cy: float, height: float) -> np.ndarray:
    """Joint positions [14, 2] of one figure ``height`` pixels tall standing around (cx, cy)."""
    s = height
    pts = np.zeros((len(JOINTS), 2))
    lean = gen.uniform(-0.25, 0.25)
    neck = np.array([cx, cy - 0.3 * s])
    down = np.array([math.sin(lean), math.cos(lean)])
    side = np.array([down[1], -down[0]])  # the figure's left, seen from the front, is the image's right
    pelvis = neck + 0.36 * s * down
    pts[J["neck"]] = neck
    pts[J["head"]] = neck - 0.13 * s * down
    for name, sign in (("left", 1.0), ("right", -1.0)):
        shoulder = neck + sign * 0.11 * s * side + 0.03 * s * down
        hip = pelvis + sign * 0.08 * s * side
        arm = gen.uniform(-0.3, 2.6) * sign
        elbow = shoulder + 0.17 * s * (math.sin(arm) * side + math.cos(arm) * down)
        fore = arm + gen.uniform(-1.6, 0.2) * sign
        wrist = elbow + 0.16 * s * (math.sin(fore) * side + math.cos(fore) * down)
        leg = gen.uniform(-0.15, 0.8) * sign
        knee = hip + 0.24 * s * (math.sin(leg) * side + math.cos(leg) * down)
        shin = leg + gen.uniform(-0.9, 0.3) * sign
        ankle = knee + 0.24 * s * (math.sin(shin) * side + math.cos(shin) * down)
        for joint, value in (("shoulder", shoulder), ("elbow", elbow), ("wrist", wrist), ("hip", hip),
                             ("knee", knee), ("ankle", ankle)):
            pts[J[f"{name}_{joint}"]] = value
    return pts


def _cv_point(p: np.ndarray) -> tuple[int, int]:
    """A continuous point as cv2's 4-bit fixed point at pixel centres (pixel i's centre is i + 0.5)."""
    return int(round((p[0] - 0.5) * 16)), int(round((p[1] - 0.5) * 16))


def draw_figure(image: np.ndarray, pts: np.ndarray, height: float, shade: float) -> None:
    width = max(2, int(round(height / 22)))
    for a, b in SKELETON:
        part = a.split("_")[0] if a.split("_")[0] == b.split("_")[0] else "trunk"
        colour = tuple(int(c * shade) for c in COLOURS[part])
        cv2.line(image, _cv_point(pts[J[a]]), _cv_point(pts[J[b]]), colour, width, cv2.LINE_AA, shift=4)
    colour = tuple(int(c * shade) for c in COLOURS["trunk"])
    cv2.circle(image, _cv_point(pts[J["head"]]), int(round(0.07 * height * 16)), colour, -1, cv2.LINE_AA, shift=4)


def draw_image(gen: np.random.Generator, size: int, single: bool) -> tuple[np.ndarray, list[dict]]:
    """One RGB image and its people: ``{"keypoints": [14, 3], "height": float}`` each."""
    h, w = (int(v) for v in gen.integers(size * 3 // 4, size + 1, size=2))
    image = background(gen, h, w)
    count = 1 if single else int(gen.integers(1, 5))
    people = []
    for _ in range(count):
        if single:
            height = gen.uniform(0.65, 0.85) * h
            cx, cy = gen.uniform(0.4, 0.6) * w, gen.uniform(0.5, 0.6) * h
        else:
            height = gen.uniform(0.3, 0.7) * h
            cx, cy = gen.uniform(0.05, 0.95) * w, gen.uniform(0.3, 0.8) * h
        pts = figure(gen, cx, cy, height)
        draw_figure(image, pts, height, gen.uniform(0.7, 1.0))
        visibility = np.full(len(JOINTS), 2.0)
        for person in people:  # a figure drawn later hides the earlier ones' joints it covers
            covered = _near_limbs(person["keypoints"][:, :2], pts, max(2.0, height / 22))
            person["keypoints"][covered & (person["keypoints"][:, 2] == 2), 2] = 1
        people.append({"keypoints": np.concatenate([pts, visibility[:, None]], axis=1), "height": height})
    if gen.random() < 0.5:  # an occluder over part of one figure
        person = people[int(gen.integers(len(people)))]
        centre = person["keypoints"][int(gen.integers(len(JOINTS))), :2]
        half = gen.uniform(0.08, 0.18, size=2) * person["height"]
        x0, y0 = centre - half
        x1, y1 = centre + half
        grey = int(gen.integers(60, 200))
        cv2.rectangle(image, _cv_point(np.array([x0, y0])), _cv_point(np.array([x1, y1])), (grey, grey, grey), -1,
                      shift=4)
        for other in people:
            kps = other["keypoints"]
            inside = (kps[:, 0] >= x0) & (kps[:, 0] <= x1) & (kps[:, 1] >= y0) & (kps[:, 1] <= y1)
            kps[inside & (kps[:, 2] > 0), 2] = 1
    for person in people:
        kps = person["keypoints"]
        outside = (kps[:, 0] < 0) | (kps[:, 0] >= w) | (kps[:, 1] < 0) | (kps[:, 1] >= h)
        kps[outside] = 0
    return image, people


def _near_limbs(points: np.ndarray, pts: np.ndarray, width: float) -> np.ndarray:
    """Which ``points`` lie within ``width`` of a limb of the figure ``pts``."""
    near = np.zeros(len(points), dtype=bool)
    for a, b in SKELETON:
        p, q = pts[J[a]], pts[J[b]]
        d = q - p
        t = np.clip(((points - p) @ d) / max(float(d @ d), 1e-9), 0, 1)
        near |= np.linalg.norm(points - (p + t[:, None] * d), axis=1) <= width
    return near


def annotation(person: dict, ann_id: int, image_id: int, w: int, h: int) -> dict | None:
    """The COCO annotation of one person, None when no joint of it is labelled."""
    kps = person["keypoints"]
    labelled = kps[:, 2] > 0
    if not labelled.any():
        return None
    pad = person["height"] * 0.08
    x0, y0 = (kps[labelled, :2].min(axis=0) - pad).clip(0, None)
    x1, y1 = np.minimum(kps[labelled, :2].max(axis=0) + pad, [w, h])
    head = np.linalg.norm(kps[J["head"], :2] - kps[J["neck"], :2]) * 2 if labelled[[J["head"], J["neck"]]].all() \
        else person["height"] * 0.26
    box = [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2), round(float(y1 - y0), 2)]
    return {"id": ann_id, "image_id": image_id, "category_id": 1, "iscrowd": 0,
            "keypoints": [round(float(v), 2) if i % 3 < 2 else int(v) for i, v in enumerate(kps.reshape(-1))],
            "num_keypoints": int(labelled.sum()), "bbox": box, "area": round(box[2] * box[3], 2),
            "head_size": round(float(head), 2)}


def categories() -> list[dict]:
    return [{"id": 1, "name": "person", "supercategory": "person", "keypoints": JOINTS,
             "skeleton": [[J[a] + 1, J[b] + 1] for a, b in SKELETON], "sigmas": SIGMAS}]


def prepare(out: str, train: int = 8, val: int = 4, size: int = 160, seed: int = 0, single: bool = False) -> None:
    """Writes the data set under ``out`` (see the module docstring)."""
    for sub in ("images", "annotations"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    start = 0
    for split, count in (("train", train), ("val", val)):
        coco: dict = {"images": [], "annotations": [], "categories": categories()}
        for index in range(start, start + count):
            image, people = draw_image(np.random.default_rng([seed, index, int(single)]), size, single)
            h, w = image.shape[:2]
            name = f"{index:06d}.jpg"
            cv2.imwrite(os.path.join(out, "images", name), cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 95])
            coco["images"].append({"id": index + 1, "file_name": name, "width": w, "height": h})
            for person in people:
                ann = annotation(person, len(coco["annotations"]) + 1, index + 1, w, h)
                if ann is not None:
                    coco["annotations"].append(ann)
        start += count
        with open(os.path.join(out, "annotations", f"person_keypoints_{split}.json"), "w", encoding="utf-8") as fh:
            json.dump(coco, fh)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=8)
    p.add_argument("--val", type=int, default=4)
    p.add_argument("--size", type=int, default=160, help="largest image side in pixels")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--single", action="store_true", help="one large figure per image (a single-person set)")
    args = p.parse_args()
    prepare(args.out, args.train, args.val, args.size, args.seed, args.single)
    print(f"wrote {args.train} train and {args.val} val images to {args.out}")


if __name__ == "__main__":
    main()
