"""A stand-in for ``python -m cauchy.datasets.tools.inspect_dataset`` (the inspection the service runs after
unpacking), for the service's dataset tests: same arguments and files, no image decoding.

``ROOT --out DIR [--task T] [--format F]``: writes ``DIR/progress.json``, then ``report.json``,
``stats.json`` and ``previews/first.jpg``. A folder per class of ``.png`` files under ``train/`` is a
usable cls ``image_folder`` (each other top folder of class folders another split: ``val/``; and
``training/`` stands for ``train/``); a file whose name holds ``broken`` makes it not usable (the file named among
the problems); no ``train/`` folder is an unrecognised layout (the reason in the report and on stderr);
a file whose name holds ``crash`` makes it crash (no report, a traceback on stderr, exit status 1).
"""
import argparse
import json
import sys
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("root", type=Path)
parser.add_argument("--out", type=Path, required=True)
parser.add_argument("--task")
parser.add_argument("--format")
args = parser.parse_args()


def write(name: str, doc: dict) -> None:
    (args.out / name).write_text(json.dumps(doc), encoding="utf-8")


write("progress.json", {"done": 0, "total": None, "phase": "recognising"})
splits = sorted(p.name for p in args.root.iterdir() if p.is_dir() and any(p.glob("*/*.png")))
train = args.root / next((name for name in splits if name.startswith("train")), "train")
if not train.is_dir():
    reason = (f"{args.root}: no cls dataset format recognised; expected image_folder: train/<class>/*.png, "
              f"found {sorted(p.name for p in args.root.iterdir())[:5]}")
    print(f"error: {reason}", file=sys.stderr)
    write("report.json", {"ok": False, "recognised": False, "error": reason})
    sys.exit()
if any("crash" in p.name for p in train.rglob("*")):
    raise RuntimeError("the inspection crashed")
classes = sorted(p.name for p in train.iterdir() if p.is_dir())
images = sorted(train.rglob("*.png"))
problems = [{"file": str(p.relative_to(args.root)), "message": f"{p.relative_to(args.root)}: cannot be decoded"}
            for p in images if "broken" in p.name]
counts = {name: len(list((train / name).glob("*.png"))) for name in classes}
write("progress.json", {"done": len(images), "total": len(images), "phase": "done"})
write("report.json", {"ok": not problems, "task": args.task or "cls", "format": args.format or "image_folder",
                      "splits": {name: {"split": name} for name in splits}, "class_names": classes,
                      "counts": {"train": counts}, "problems": problems})
write("stats.json", {"images_per_split": {"train": len(images)}, "class_histogram": counts})
(args.out / "previews").mkdir(exist_ok=True)
(args.out / "previews" / "first.jpg").write_bytes(b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9")
