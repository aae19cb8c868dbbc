"""The datasets pages in a real browser, through nginx, with the real inspection: archives uploaded
through the page's form become versions whose page shows the validation report (problems named by
file), the statistics as plots and the previews; the launch form offers a ready dataset of its task, with
a job launched with it gets the split names it was found with (an image and mask folder set's
``training`` and ``validation``: the service fills them in, ``services/datasets/job_data.py``)."""
from __future__ import annotations

import json
import re
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts import sign_in
from dataset_layouts import make
from playwright.sync_api import expect
from stack import Stack, fast_settings, service_fixtures

pytestmark = pytest.mark.slow
INSPECTED = 180_000  # ms: unpacking and the inspection's processes on a busy shared machine


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = fast_settings(tmp_path_factory.mktemp("datasets-page") / "home",
                             dataset_inspect_command=(sys.executable, "-m", "cauchy.datasets.tools.inspect_dataset"))
    live = Stack(settings)
    yield live
    live.close()


def zipped(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, path.relative_to(folder))
    return archive


def upload(page, archive: Path, name: str, task: str = "") -> None:
    page.goto("/#/datasets")
    page.set_input_files("#u-file", str(archive))
    page.fill("#u-name", name)
    if task:
        page.select_option("#u-task", task)
    page.get_by_role("button", name="Upload").click()
    expect(page.locator(".page-head h1")).to_have_text(name, timeout=60_000)


def plot(page, name: str):
    return page.locator(f'figure[data-plot="{name}"] svg')


def test_uploads_from_the_page_show_report_plots_and_previews(front, page, tmp_path, shot):
    sign_in(page, "admin", service_fixtures.ADMIN_PASSWORD)
    upload(page, zipped(Path(make("coco", str(tmp_path / "shapes"))), tmp_path / "shapes.zip"), "shapes")
    expect(page.locator('[data-role="report"]')).to_contain_text("Usable", timeout=INSPECTED)
    expect(page.locator('[data-role="report"]')).to_contain_text("circle")
    for name in ("images-per-split", "class-histogram", "aspect-ratios", "boxes-per-image", "box-sizes", "box-sides"):
        assert plot(page, name).locator("rect.plot-bar").count() >= 1, name
    assert plot(page, "images-per-split").locator("rect.plot-bar").count() == 4  # 2 classes x 2 splits
    circles, squares = (bar.bounding_box()["height"] for bar in plot(page, "class-histogram").locator("rect.plot-bar").all())
    assert circles > 40 and circles == pytest.approx(2 * squares, rel=0.05)  # 4 and 2 boxes, drawn to scale
    expect(plot(page, "image-sizes").locator("circle.plot-point")).to_have_count(6)
    expect(page.locator(".gallery img")).to_have_count(6)
    page.wait_for_function("[...document.querySelectorAll('.gallery img')].every((i) => i.complete && i.naturalWidth > 0)")
    shot(page, "datasets-1-det-ready")

    pose = Path(make("coco_keypoints", str(tmp_path / "people")))
    (pose / "images" / "val1.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a picture")
    upload(page, zipped(pose, tmp_path / "people.zip"), "people", task="pose")
    report = page.locator('[data-role="report"]')
    expect(report).to_contain_text("Not usable", timeout=INSPECTED)
    expect(report.locator("table.problems")).to_contain_text("images/val1.jpg")
    expect(report.locator("table.problems")).to_contain_text("not a decodable image")
    bars = plot(page, "keypoint-visibility").locator("rect.plot-bar")
    expect(bars).to_have_count(9)  # 3 joints x visible, occluded, absent
    expect(page.locator(".page-head .badge, .dataset-summary .badge").first).to_have_text("invalid")
    shot(page, "datasets-2-pose-invalid")

    upload(page, zipped(Path(make("mask_folder", str(tmp_path / "rooms"))), tmp_path / "rooms.zip"), "rooms", task="seg")
    expect(page.locator('[data-role="report"]')).to_contain_text("Usable", timeout=INSPECTED)
    expect(plot(page, "mask-pixel-share").locator("rect.plot-bar")).to_have_count(2)  # background, thing
    shot(page, "datasets-3-seg-ready")

    page.goto("/#/datasets")
    expect(page.locator('tr[data-dataset="shapes"] .badge')).to_have_text("ready")
    expect(page.locator('tr[data-dataset="people"] .badge')).to_have_text("invalid")
    page.goto("/#/launch")
    page.select_option("#f-task", "det")
    options = page.locator("#f-dataset option")
    expect(options).to_have_text(["shapes — coco, v1", "A folder on the server…"])
    page.select_option("#f-dataset", "shapes")
    page.get_by_role("tab", name="Hypes JSON").or_(page.get_by_role("button", name="Hypes JSON")).click()
    expect(page.locator("#f-json")).to_be_visible()
    data = json.loads(page.locator("#f-json").input_value())["data"]
    assert data["dataset"] == "shapes" and not {"data_dir", "format", "train_split", "num_classes"} & set(data)
    shot(page, "datasets-4-launch")
    page.get_by_role("button", name="Form", exact=True).click()
    page.select_option("#f-task", "seg")
    page.select_option("#f-dataset", "rooms")
    page.get_by_role("button", name="Launch", exact=True).click()
    page.wait_for_url(re.compile(r"#/jobs/\d+$"))
    data = front.service.job(int(page.url.rsplit("/", 1)[1]))["hypes"]["data"]  # the service filled them in
    assert (data["dataset"], data["format"]) == ("rooms@1", "mask_folder")
    assert (data["train_split"], data["val_split"], data["test_split"]) == ("training", "validation", "validation")
