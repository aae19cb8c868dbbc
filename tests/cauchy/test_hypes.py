"""Hypes validation: every error names its key path and says what was expected."""
import json

import pytest

from cauchy.hypes import HypesError, load_hypes, parse_override, resolve_hypes

BASE = {
    "task": "cls", "method": "image_classifier",
    "data": {"format": "image_folder", "data_dir": "data/digits"},
    "network": {"model_name": "small_cnn"},
    "solver": {"max_epoch": 2, "lr": {"base_lr": 0.1}},
}


def test_defaults_are_filled():
    h = resolve_hypes(BASE)
    assert h["train"]["batch_size"] == 32 and h["train"]["shuffle"] is True
    assert h["solver"]["optim"]["sgd"]["momentum"] == 0.9
    assert h["data"]["normalize"]["div_value"] == 255.0
    assert "res" not in h


def test_task_sections_only_for_their_task():
    assert resolve_hypes({**BASE, "task": "det"})["res"]["nms_iou"] == 0.5
    with pytest.raises(HypesError, match=r"^res: unknown key"):
        resolve_hypes({**BASE, "res": {}})


def test_a_task_registers_its_own_sections():
    """A new task is one module registering a Task: its top-level sections are validated and go to its
    methods, keys it adds inside existing sections are validated too, and no generic module changes."""
    from cauchy.registry import TASKS
    from cauchy.schema import integer, string
    from cauchy.tasks import Task, register_task

    task = register_task(Task("test_pose_like", {"target": {"sigma": integer(2, ge=1)},
                                                 "test": {"mode": string("whole", choices=("whole", "slide"))}}))
    try:
        h = resolve_hypes({**BASE, "task": "test_pose_like"}, ["test.mode=slide"])
        assert h["target"] == {"sigma": 2} and h["test"]["mode"] == "slide" and h["test"]["batch_size"] == 64
        from cauchy.hypes import SCHEMA
        assert task.method_sections(SCHEMA) == ["target"]
        with pytest.raises(HypesError, match=r"^test\.mode: expected one of whole, slide"):
            resolve_hypes({**BASE, "task": "test_pose_like"}, ["test.mode=tiles"])
        with pytest.raises(HypesError, match=r"^test\.mode: unknown key"):
            resolve_hypes(BASE, ["test.mode=slide"])
    finally:
        TASKS._entries.pop("test_pose_like")


def test_evaluator_is_a_name_or_a_list_of_names():
    assert resolve_hypes(BASE, ['val.evaluator=["coco","voc"]'])["val"]["evaluator"] == ["coco", "voc"]
    assert resolve_hypes(BASE, ["test.evaluator=cls"])["test"]["evaluator"] == "cls"
    for bad in ("val.evaluator=[]", "val.evaluator=[1]", "val.evaluator=3"):
        with pytest.raises(HypesError, match=r"^val\.evaluator: expected a name or a non-empty list of names"):
            resolve_hypes(BASE, [bad])


@pytest.mark.parametrize("override, message", [
    ('solver.lr.base_lr="fast"', 'solver.lr.base_lr: expected a number > 0, got "fast"'),
    ("solver.lr.base_lr=0", "solver.lr.base_lr: expected a number > 0, got 0"),
    ("solver:lr:base_lr=-1", "solver.lr.base_lr: expected a number > 0, got -1"),
    ("solver.lr.lr_policy=exp", "solver.lr.lr_policy: expected one of fixed, step, multistep, cosine, poly, "
                                "lambda_poly, plateau, got \"exp\""),
    ("train.batch_size=0", "train.batch_size: expected an integer >= 1, got 0"),
    ("train.batch_size=2.5", "train.batch_size: expected an integer >= 1, got 2.5"),
    ("train.shuffle=1", "train.shuffle: expected true or false, got 1"),
    ("data.normalize.std=[1,0,1]", "data.normalize.std: expected a list of 3 numbers > 0, got [1, 0, 1]"),
    ("data.normalize.mean=[1,2]", "data.normalize.mean: expected a list of 3 numbers, got [1, 2]"),
    ("data.workerz=2", "data.workerz: unknown key; valid keys here: class_names, data_dir, dataset, format"),
    ("network=3", "network: expected an object, got 3"),
    ("task=xyz", "task: expected one of cls, det, "),  # the registered tasks, sorted (seg and pose join)
    ("solver.max_iters=10", "solver.max_epoch: give exactly one of solver.max_epoch and solver.max_iters"),
    ("data.class_names=[\"a\",\"b\"]", None),
])
def test_errors_name_the_key(override, message):
    doc = json.loads(json.dumps(BASE))
    if message is None:
        assert resolve_hypes(doc, [override])["data"]["class_names"] == ["a", "b"]
        return
    with pytest.raises(HypesError) as info:
        resolve_hypes(doc, [override])
    assert str(info.value).startswith(message)
    assert info.value.key == message.split(":")[0]


def test_missing_required_key():
    doc = json.loads(json.dumps(BASE))
    del doc["network"]["model_name"]
    with pytest.raises(HypesError, match=r"^network\.model_name: required key is missing$"):
        resolve_hypes(doc)


def test_num_classes_must_match_class_names():
    with pytest.raises(HypesError, match=r"^data\.num_classes: is 3 but data\.class_names lists 2 names"):
        resolve_hypes(BASE, ["data.num_classes=3", 'data.class_names=["a","b"]'])


def test_overrides_parse_json_or_keep_strings():
    assert parse_override("a.b=0.5") == (["a", "b"], 0.5)
    assert parse_override("a:b=[1,2]") == (["a", "b"], [1, 2])
    assert parse_override("a.b=resnet18") == (["a", "b"], "resnet18")
    with pytest.raises(HypesError, match="not of the form"):
        parse_override("justakey")
    with pytest.raises(HypesError, match=r"^solver\.lr: is 3, cannot set solver\.lr\.base_lr"):
        resolve_hypes(BASE, ["solver.lr=3", "solver.lr.base_lr=1"])


def test_input_document_is_not_modified():
    doc = json.loads(json.dumps(BASE))
    resolve_hypes(doc, ["solver.lr.base_lr=0.5"])
    assert doc == BASE


def test_load_reports_json_syntax_with_position(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"task": "cls",\n "method": }')
    with pytest.raises(HypesError, match=r"bad\.json: invalid JSON at line 2 column 12"):
        load_hypes(str(bad))
    with pytest.raises(HypesError, match="does not exist"):
        load_hypes(str(tmp_path / "missing.json"))
