"""The page in a real browser, through nginx, signed in as the admin: launch a digits job from the form,
watch it queue, run and draw its loss in the embedded Visdom, stop it, publish it, deploy the weights and
see the deployment answer; a bad field shows its error."""
from __future__ import annotations

from pathlib import Path

import pytest
from accounts import sign_in
from playwright.sync_api import expect
from stack import service_fixtures

pytestmark = pytest.mark.slow
DIGITS = "cls/image_classifier_smallcnn_digits.json"
SLOW_START = 240_000  # ms: a real run_tasks.py imports torch first, which takes minutes on a busy shared machine


def blocker_overrides(data_dir: str) -> list[str]:
    return [f"data.data_dir={data_dir}", "solver.max_epoch=null", "solver.max_iters=100000", "solver.lr.metric=iters",
            "solver.test_interval=100000", "logging.progress_bar=false"]


def test_launch_watch_stop_and_publish_a_digits_job(page, admin, digits_dir, shot):
    blocker = admin.submit(DIGITS, overrides=blocker_overrides(digits_dir), name="holds the only CPU slot")
    sign_in(page, "admin", service_fixtures.ADMIN_PASSWORD)
    row = page.locator(f'tr[data-job="{blocker["id"]}"]')
    expect(row.locator(".badge")).to_have_text("running", timeout=30_000)
    expect(row.locator(".bar")).to_be_visible(timeout=SLOW_START)  # progress from metrics.jsonl
    shot(page, "1-jobs-list")

    page.get_by_role("link", name="New job").click()
    page.select_option("#f-template", DIGITS)
    expect(page.locator("#f-network-model_name")).to_have_value("small_cnn")
    page.fill("#f-data-data_dir", digits_dir)
    page.fill("#f-solver-max_epoch", "40")
    page.fill("#f-name", "digits from the page")
    shot(page, "2-launch-form")
    page.get_by_role("button", name="Launch").click()

    expect(page.locator(".page-head .badge")).to_have_text("queued")
    expect(page.get_by_text("#1 in queue")).to_be_visible()
    expect(page.locator(".facts").first).to_contain_text("needs 1 CPU slot, 0 free")  # why it waits
    shot(page, "3-job-queued")
    job_id = int(page.url.rsplit("/", 1)[1])

    admin.call("POST", f"/jobs/{blocker['id']}/stop", 202)
    expect(page.locator(".page-head .badge")).to_have_text("running", timeout=90_000)
    charts = page.frame_locator(".charts iframe")
    expect(charts.locator('text.gtitle[data-unformatted="loss"]')).to_be_visible(timeout=SLOW_START)
    expect(charts.locator(".js-plotly-plot .scatterlayer .trace path.js-line").first).to_be_visible(timeout=SLOW_START)
    expect(page.locator(".log")).to_contain_text("training small_cnn", timeout=SLOW_START)
    shot(page, "4-job-running")

    page.locator(".page-head").get_by_role("button", name="Stop").click()
    expect(page.locator(".page-head .badge")).to_have_text("stopped", timeout=90_000)
    assert admin.job(job_id)["state"] == "stopped"
    expect(page.locator(".downloads")).to_contain_text("checkpoints/latest.pth")
    page.fill("#publish-name", "digits_from_the_page")
    page.select_option("#publish-visibility", "private")
    page.locator("#publish").get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Published as digits_from_the_page")).to_be_visible(timeout=60_000)
    shot(page, "5-job-stopped")

    page.get_by_role("link", name="See the weights →").click()
    weights_row = page.locator('tr[data-weights="digits_from_the_page"]')
    expect(weights_row).to_contain_text("small_cnn")
    expect(weights_row).to_contain_text(f"job #{job_id}")
    expect(weights_row.locator('td[data-label="Owner"]')).to_have_text("admin")
    expect(weights_row.locator("select")).to_have_value("private")
    weights_row.locator("select").select_option("public")
    expect(weights_row.get_by_role("status")).to_have_text("saved")
    assert {w["name"]: w for w in admin.call("GET", "/weights", 200).json()["weights"]}["digits_from_the_page"]["visibility"] == "public"
    shot(page, "6-weights")

    # Deploy them from their row; the deployments page shows the replica ready, its metrics and how to call it.
    weights_row.get_by_role("button", name="Deploy").click()
    page.locator(".deploy-form").get_by_role("button", name="Deploy").click()
    deployment = page.locator('section[data-deployment="digits_from_the_page"]')
    expect(deployment.locator(".page-head .badge")).to_have_text("ready", timeout=SLOW_START)
    image = next(Path(digits_dir, "val", "3").iterdir()).read_bytes()
    served = admin.http.post(f"{admin.url}/serve/digits_from_the_page/predict", data=image,
                             headers={"X-CSRF-Token": admin.csrf}, timeout=60)
    assert served.status_code == 200 and served.json()["predictions"][0]["class_name"] in "0123456789", served.text
    expect(deployment.locator('[data-metric="requests"]')).to_contain_text("1 requests (1 images", timeout=30_000)
    expect(deployment.locator('[data-example="curl"]')).to_contain_text("/serve/digits_from_the_page/predict")
    shot(page, "6b-deployments")

    page.set_viewport_size({"width": 390, "height": 800})
    page.goto("/#/jobs")
    expect(page.locator(f'tr[data-job="{job_id}"] .badge')).to_have_text("stopped")
    shot(page, "7-jobs-narrow")


def test_a_bad_field_shows_its_error(page, shot):
    sign_in(page, "admin", service_fixtures.ADMIN_PASSWORD, "/#/launch")
    page.fill("#f-solver-lr-base_lr", "0")
    page.get_by_role("button", name="Launch").click()
    error = page.locator('[data-field="hypes.solver.lr.base_lr"] .field-error')
    expect(error).to_contain_text("expected a number > 0")
    expect(page.locator(".form-error")).to_contain_text("not queued")
    shot(page, "8-launch-error")
    page.fill("#f-solver-lr-base_lr", "0.05")
    page.fill("#f-gpus", "4")
    page.get_by_role("button", name="Launch").click()
    expect(page.locator('[data-field="resources.gpus"] .field-error')).to_contain_text("asked for 4 GPUs")
    expect(page.locator('[data-field="hypes.solver.lr.base_lr"] .field-error')).to_be_hidden()
