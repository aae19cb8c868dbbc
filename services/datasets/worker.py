"""The worker process that touches an untrusted archive or a registered folder, never a request thread:

    python -m services.datasets.worker unpack ARCHIVE TARGET --manifest FILE --max-bytes N --max-files N --max-ratio R
    python -m services.datasets.worker hash ROOT --manifest FILE --max-bytes N --max-files N

Writes the manifest (one ``sha256  size  path`` line per file, sorted) and prints one JSON object:
``{"files", "size", "sha256"}``. A refused archive or folder: exit 1, the reason on stderr.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cauchy.files import atomic_write
from services.datasets.archive import ArchiveRefused, Limits, unpack
from services.datasets.content import ContentError, FileEntry, manifest_line, summarise, walk
from services.private import PRIVATE_FILE

REFUSED = 1


def write_manifest(path: Path, entries: list[FileEntry]) -> None:
    lines = "".join(manifest_line(entry) for entry in sorted(entries, key=lambda e: e.path))
    atomic_write(path, lambda fh: fh.write(lines.encode("utf-8", "surrogateescape")), PRIVATE_FILE)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.datasets.worker")
    parser.add_argument("action", choices=("unpack", "hash"))
    parser.add_argument("source", type=Path)
    parser.add_argument("target", type=Path, nargs="?")
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--max-bytes", type=int, required=True)
    parser.add_argument("--max-files", type=int, required=True)
    parser.add_argument("--max-ratio", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.action == "unpack":
            entries = unpack(args.source, args.target, Limits(args.max_bytes, args.max_files, args.max_ratio))
        else:
            entries = walk(args.source, args.max_files, args.max_bytes)
    except (ArchiveRefused, ContentError) as exc:
        print(str(exc), file=sys.stderr)
        return REFUSED
    if not entries:
        print("no files in it", file=sys.stderr)
        return REFUSED
    write_manifest(args.manifest, entries)
    content = summarise(entries)
    print(json.dumps({"files": content.files, "size": content.size, "sha256": content.sha256}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
