"""Recognise, validate and describe a dataset folder; the control service runs it in a background
process after an upload.

``python -m cauchy.datasets.tools.inspect_dataset ROOT --out DIR [--task T] [--format F]
[--workers N] [--make-split 0.2 --seed 0]`` writes into DIR (names in ``report_files``):
``progress.json`` while it runs, then ``report.json`` (usable or not, counts, the first problems
with file names), ``stats.json`` and ``previews/``. Each split is opened by its reader, exactly as a
job would; every image is then loaded through the reader in worker processes (the image decodes,
masks and keypoints pass the checks) and described. The outcome is in report.json on every path but a
crash (``report_files.outcome`` reads it): the exit status says nothing more, since only ``run_tasks.py``
turns outcomes into exit codes. Torch-free.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cauchy.datasets.errors import DatasetError
from cauchy.datasets.io import MissingFiles
from cauchy.datasets.tools import report_files
from cauchy.datasets.tools.check_worker import Inspection, check_all, named_file
from cauchy.datasets.tools.item_facts import ItemFacts
from cauchy.datasets.tools.layout import UnrecognisedLayout
from cauchy.datasets.tools.open_split import open_split
from cauchy.datasets.tools.recognise import recognise
from cauchy.datasets.tools.split import make_split
from cauchy.datasets.tools.statistics import statistics

PROGRESS_EVERY_S = 1.0
REFERENCE_SPLIT = "train"  # the split whose class names the others are checked against (else the first)


def write_json(path: Path, doc: Any) -> None:
    """Atomically (a reader never sees half a file); compact, as only the C encoder (no ``indent``) keeps
    stats.json's histograms cheap to write."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(doc, separators=(",", ":")), encoding="utf-8")
    os.replace(tmp, path)


def problem(severity: str, split: str, file: str, message: str) -> dict[str, str]:
    return {"severity": severity, "split": split, "file": file, "message": message}


def relative_to(root: str, problems: list[dict[str, str]]) -> list[dict[str, str]]:
    """File names in the report relative to the dataset's root (a server's paths are nobody's business)."""
    prefix = os.path.join(os.path.abspath(root), "")
    return [{key: value.replace(prefix, "") for key, value in p.items()} for p in problems]


def reader_problems(task: str, view: Any) -> Iterator[tuple[str, str]]:
    """``(file, reason)`` the reader found while opening a split (det: bad boxes, stray annotations)."""
    if task == "det":
        yield from view.bad_boxes
        yield from ((named_file(text), text) for text in view.unmatched_annotations)


def class_problems(split_names: dict[str, list[str]]) -> tuple[list[str], list[dict[str, str]]]:
    """The dataset's class names (the reference split's, then any others) and the disagreements."""
    reference = REFERENCE_SPLIT if REFERENCE_SPLIT in split_names else next(iter(split_names))
    names = list(split_names[reference])
    problems = []
    for split, theirs in split_names.items():
        extra = [name for name in theirs if name not in split_names[reference]]
        if extra:
            problems.append(problem("error", split, "", f"classes {extra[:10]} of split {split!r} are not in split "
                                                        f"{reference!r}"))
            names += [name for name in extra if name not in names]
        missing = [name for name in split_names[reference] if name not in theirs]
        if missing and split != reference:
            problems.append(problem("warning", split, "", f"split {split!r} has no {missing[:10]} (classes of split "
                                                          f"{reference!r})"))
    return names, problems


def inspect(root: str, out: Path, task: str | None = None, fmt: str | None = None,
            workers: int | None = None) -> dict[str, Any]:
    """Writes report.json, stats.json and previews/ into ``out`` and returns the report;
    UnrecognisedLayout when the folder is no known layout."""
    out.mkdir(parents=True, exist_ok=True)
    previews = out / report_files.PREVIEWS_DIR
    previews.mkdir(exist_ok=True)
    progress = out / report_files.PROGRESS
    write_json(progress, {"phase": "recognising", "done": 0, "total": 0})
    root = os.path.abspath(root)
    found = recognise(root, task, fmt)
    write_json(progress, {"phase": "reading", "done": 0, "total": 0})
    problems: list[dict[str, str]] = []
    views: dict[str, Any] = {}

    def open_one(split: str) -> Any:
        """The split's reader, or None with the problems it raised."""
        try:
            view = open_split(found, root, found.splits[split])
        except MissingFiles as exc:  # every one, not only the first
            problems.extend(problem("error", split, path, message) for path, message in exc.problems())
            return None
        except (ValueError, OSError) as exc:  # DatasetError, or a file the reader could not even decode as text
            problems.append(problem("error", split, named_file(str(exc)), str(exc)))
            return None
        problems.extend(problem("error", split, file, reason) for file, reason in reader_problems(found.task, view))
        views[split] = view
        return view

    # The training split (train, training: usually the largest) last: the workers check the others while it is read.
    openers = [(split, functools.partial(open_one, split))
               for split in sorted(found.splits, key=lambda name: name.startswith(REFERENCE_SPLIT))]
    workers = workers or os.cpu_count() or 1
    facts: list[ItemFacts] = []
    last = 0.0
    for batch in check_all(Inspection(found.task, previews), openers, workers):
        facts += batch
        if time.monotonic() - last > PROGRESS_EVERY_S:
            write_json(progress, {"phase": "checking", "done": len(facts), "total": sum(len(v) for v in views.values())})
            last = time.monotonic()
    views = {split: views[split] for split in found.splits if split in views}  # the order the splits were found in
    problems.sort(key=lambda p: list(found.splits).index(p["split"]))
    split_names = {split: list(view.class_names) for split, view in views.items()}
    class_names, disagreements = class_problems(split_names) if views else (found.class_names or [], [])
    problems += disagreements
    total = sum(len(view) for view in views.values())
    facts.sort(key=lambda f: (f.split, f.index))
    problems += [problem("error", f.split, f.path, f.problem) for f in facts if f.problem]
    errors = [p for p in problems if p["severity"] == "error"]
    stats = statistics(found.task, facts, class_names, split_names, found.keypoint_names)
    stats["previews"] = sorted(p.name for p in previews.glob("*.jpg"))
    report = {
        "ok": bool(views) and not errors and total > 0, "task": found.task, "format": found.format,
        "splits": found.splits, "class_names": class_names, "keypoint_names": found.keypoint_names,
        "counts": {"images": total, "bad_images": sum(1 for f in facts if f.problem),
                   "per_split": {split: len(view) for split, view in views.items()},
                   "errors": len(errors), "warnings": len(problems) - len(errors)},
        "problems": relative_to(root, sorted(problems, key=lambda p: p["severity"] != "error")[:report_files.MAX_PROBLEMS]),
    }
    write_json(out / report_files.STATS, stats)
    write_json(out / report_files.REPORT, report)
    write_json(progress, {"phase": "done", "done": total, "total": total})
    return report


def failed(out: Path, doc: dict[str, Any], exc: Exception) -> None:
    """The report of an inspection that did not run, and the reason on stderr."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / report_files.REPORT, {"ok": False, **doc, "error": str(exc)})
    write_json(out / report_files.PROGRESS, {"phase": "done", "done": 0, "total": 0})
    print(f"error: {exc}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    """Inspect (after making a split when asked); the counts on stdout, a reason on stderr."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--task")
    parser.add_argument("--format", dest="fmt")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per CPU)")
    parser.add_argument("--make-split", type=float, metavar="FRACTION",
                        help="when there is one split only, first write a stratified train/val split of it")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.make_split is not None:
            written = make_split(args.root, args.make_split, args.seed, args.task, args.fmt)
            print(f"split written: {', '.join(written)}", file=sys.stderr)
        report = inspect(args.root, args.out, args.task, args.fmt, args.workers)
    except UnrecognisedLayout as exc:
        failed(args.out, {"recognised": False}, exc)
        return
    except DatasetError as exc:  # a split that cannot be made (--make-split)
        failed(args.out, {}, exc)
        return
    print(json.dumps(report["counts"]))


if __name__ == "__main__":
    main()
