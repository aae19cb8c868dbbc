"""Pose estimation data: the COCO keypoints reader, its skeleton metadata, pose transforms and targets.

Importing this package registers every module in it (``DATASETS["coco_keypoints"]``, the pose
``TRANSFORMS``). The sample contract, shared by top-down and bottom-up methods:

Reader (``data.format: "coco_keypoints"``, ``data.params.samples``):
- ``"person"`` (top-down): one sample per annotated person with at least ``min_keypoints`` labelled
  keypoints (crowds excluded); the whole image with that person's ``boxes`` [1, 4] and ``keypoints``
  [1, K, 3]. The ``top_down_affine`` transform then cuts the person out (box enlarged by
  ``box_scale`` to the input's aspect ratio) and warps it to the input size.
- ``"image"`` (bottom-up): one sample per image with all its non-crowd people: ``boxes`` [P, 4] and
  ``keypoints`` [P, K, 3] (P may be 0).

Every sample (before ``normalize``; numpy arrays):
- ``image`` HxWx3 uint8 RGB; ``path``; ``image_id`` (int); ``orig_size`` (h, w);
- ``boxes`` float32 [P, 4] xyxy pixels and ``keypoints`` float32 [P, K, 3] (x, y, visibility 0
  unlabelled / 1 labelled but hidden / 2 visible), in continuous pixel coordinates (pixel column i
  covers [i, i + 1)); every geometric transform keeps row p of both together or drops both;
- ``flip_index`` int64 [K]: the keypoint each one becomes in a mirror image (``geometry.hflip``
  uses it, so flipping swaps the data's own left/right pairs);
- ``affine`` float64 3x3: original pixels -> the sample's current pixels, multiplied by every
  geometric transform; predictions map back to original pixels through its inverse;
- ``person`` (person samples only): the index of this person in ``truth``;
- ``truth``: the whole image's ground truth as read, untouched by transforms, for the evaluators:
  ``keypoints`` float64 [P, K, 3], ``boxes`` float64 [P, 4] xyxy, ``areas`` [P], ``iscrowd`` bool [P],
  ``num_keypoints`` int [P], ``head_sizes`` float64 [P] (NaN where the annotation has none), over
  every annotation of the image (crowds and people without keypoints included, as COCO's metric
  wants).

``normalize`` turns ``image`` into a float CHW tensor and ``boxes``, ``keypoints``, ``flip_index``
and ``affine`` into tensors. Dataset attributes: ``class_names`` are the K keypoint names (so
``num_classes`` is K, the number of heatmaps); ``metadata`` is ``{"keypoint_names", "skeleton"
(0-based index pairs), "flip_pairs" (0-based), "sigmas" (per-keypoint OKS constants, or None),
"category_id"}``; the evaluators get it as keyword arguments and methods through
``Method.use_metadata`` (it is saved in checkpoints, so test and predict have it too).

Targets: ``cauchy.datasets.pose.heatmaps.gaussian_heatmaps`` draws the Gaussian heatmaps and
per-keypoint weights of a batch (on its device), at the method's stride and sigma;
``cauchy.datasets.pose.paf.part_affinity_fields`` draws OpenPose's part affinity fields along the
skeleton's limbs.
"""
from cauchy.registry import import_submodules

import_submodules(__name__, __path__)
