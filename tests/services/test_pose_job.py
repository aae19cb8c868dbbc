"""A pose job through the real service: submitted through the API, it trains SimpleBaseline-small on a
tiny sticks set and its Visdom env holds its OKS AP and validation images with skeletons drawn."""
from __future__ import annotations

import pytest
from real_tasks import synthetic
from test_real_jobs import assert_visdom_shows

pytestmark = pytest.mark.slow


def test_pose_job_shows_its_oks_ap_and_skeletons_in_visdom(real_settings, service_factory, tmp_path):
    sticks = synthetic("pose/sticks", tmp_path / "sticks", train=3, val=2)
    service = service_factory(real_settings)
    job = service.submit("pose/simple_baseline_small_sticks.json", name="pose sticks x2", overrides=[
        f"data.data_dir={sticks}", "data.workers=0", "solver.max_iters=2", "solver.display_iter=1",
        "train.batch_size=2", "val.evaluator=coco_keypoints", "logging.progress_bar=false", "logging.val_images=2"])
    done = service.wait_ended(job["id"], timeout=240)
    assert done["state"] == "succeeded", done
    events = service.call("GET", f"/api/v1/jobs/{job['id']}/metrics").json()["events"]
    assert {("train", "loss"), ("train", "loss_heatmap"), ("val", "ap"), ("val", "ap50")} <= {
        (e["phase"], e["name"]) for e in events}
    assert_visdom_shows(done, "ap", images=2)
