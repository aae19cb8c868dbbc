"""The OpenAPI part of datasets (``services/api/datasets.py``); ``openapi.py`` merges it into the document."""
from __future__ import annotations

from typing import Any

from cauchy.manifest import NAME_RE
from cauchy.registry import TASKS
from services.api.auth_openapi import VISIBILITY, body, error, path_param, ref, reply
from services.api.datasets import FORMAT_RE, MAX_SIZE
from services.datasets.models import VERSION_STATES

DATASET_ID = path_param("dataset_id", "integer")
NUMBER = path_param("number", "integer")
UPLOAD = {"name": "upload_id", "in": "path", "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}
NO_DATASET = {"404": error("no such dataset or version, or not one the caller may read")}
NO_UPLOAD = {"404": error("no such upload in progress of the caller's")}
DESCRIBED = {
    "name": {"type": "string", "pattern": f"^{NAME_RE.pattern}$", "example": "digits",
             "description": "a new dataset, or a new version of the caller's dataset of that name"},
    "task": {"type": "string", "enum": TASKS.names(), "description": "else recognised"},
    "format": {"type": "string", "pattern": f"^{FORMAT_RE.pattern}$",
               "description": "a reader's name, e.g. image_folder or coco; else recognised"},
    "visibility": {**VISIBILITY, "default": "private"},
}

SCHEMAS: dict[str, Any] = {
    "DatasetVersion": {"type": "object", "properties": {
        "dataset_id": {"type": "integer"}, "name": {"type": "string"}, "version": {"type": "integer"},
        "ref": {"type": "string", "example": "digits@2", "description": "what a job names in data.dataset"},
        "state": {"type": "string", "enum": list(VERSION_STATES)},
        "reason": {"type": ["string", "null"], "description": "why it is invalid"},
        "source": {"type": "string", "enum": ["upload", "registered"]},
        "task": {"type": ["string", "null"]}, "format": {"type": ["string", "null"]},
        "sha256": {"type": ["string", "null"], "description": "sha256 over the sorted manifest of its files"},
        "size": {"type": "integer"}, "files": {"type": ["integer", "null"]},
        "created_at": {"type": "number"}, "ready_at": {"type": ["number", "null"]},
        "links": {"type": "object", "additionalProperties": {"type": "string"}}}},
    "Dataset": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "owner": {"type": "string"}, "visibility": VISIBILITY,
        "created_at": {"type": "number"}, "latest_ready": {"type": ["integer", "null"]},
        "versions": {"type": "array", "items": ref("DatasetVersion")}}},
    "Upload": {"type": "object", "properties": {
        "id": {"type": "string"}, "dataset_id": {"type": "integer"}, "name": {"type": "string"},
        "version": {"type": "integer"}, "size": {"type": "integer"},
        "offset": {"type": "integer", "description": "bytes received: the next PUT starts here"},
        "url": {"type": "string"}}},
}

VERSION = reply("the version", ref("DatasetVersion"))
INSPECTION = {"200": reply("written by the inspection", {"type": "object"}),
              "404": error("no such version, or the inspection has not written it yet")}
PATHS: dict[str, Any] = {
    "/datasets": {"get": {"summary": "The datasets the caller may read, with their versions",
                          "responses": {"200": reply("datasets", {"type": "object", "properties": {
                              "datasets": {"type": "array", "items": ref("Dataset")}}})}}},
    "/datasets/uploads": {"post": {
        "summary": "Start an upload of a zip, tar or tar.gz archive of SIZE bytes: a new version, uploading",
        "requestBody": body({"type": "object", "required": ["name", "size"], "properties": {
            **DESCRIBED, "size": {"type": "integer", "minimum": 1, "maximum": MAX_SIZE}}}),
        "responses": {"201": reply("the upload; PUT its bytes to url", ref("Upload")),
                      "400": error("a bad name, size, task, format or visibility"),
                      "409": error("the name is another user's dataset"),
                      "413": error("the size would pass the caller's dataset quota")}}},
    "/datasets/uploads/{upload_id}": {
        "get": {"summary": "How many bytes arrived (also the Upload-Offset header): resume from offset",
                "parameters": [UPLOAD], "responses": {"200": reply("the upload", ref("Upload")), **NO_UPLOAD}},
        "put": {"summary": "Append bytes FIRST-LAST, FIRST being the offset received so far; streamed to disk",
                "parameters": [UPLOAD, {"name": "Content-Range", "in": "header", "required": True,
                                        "schema": {"type": "string", "pattern": r"^bytes \d+-\d+/\d+$"}}],
                "requestBody": {"required": True, "content": {"application/octet-stream": {
                    "schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": reply("the upload", ref("Upload")), **NO_UPLOAD,
                              "400": error("a bad Content-Range, or a body that does not match it"),
                              "409": error("FIRST is not the offset received so far (the message says it)"),
                              "413": error("a chunk larger than CAUCHY_DATASET_CHUNK_MB")}},
        "delete": {"summary": "Abandon the upload: its bytes and its version are forgotten",
                   "parameters": [UPLOAD], "responses": {"204": {"description": "abandoned"}, **NO_UPLOAD}}},
    "/datasets/uploads/{upload_id}/finish": {"post": {
        "summary": "All bytes arrived: the archive becomes the version, unpacked and inspected in the background",
        "parameters": [UPLOAD], "responses": {"202": reply("the version, unpacking", ref("DatasetVersion")), **NO_UPLOAD,
                                              "409": error("bytes are still missing")}}},
    "/datasets/register": {"post": {
        "summary": "(admin) A folder under CAUCHY_DATA_ROOTS becomes a version where it is, without copying",
        "requestBody": body({"type": "object", "required": ["name", "path"], "properties": {
            **DESCRIBED, "path": {"type": "string", "minLength": 1, "example": "/srv/datasets/voc"}}}),
        "responses": {"202": reply("the version, validating", ref("DatasetVersion")),
                      "400": error("a bad field, or a path outside CAUCHY_DATA_ROOTS"),
                      "409": error("the name is another user's dataset")}}},
    "/datasets/{dataset_id}": {
        "get": {"summary": "A dataset and its versions", "parameters": [DATASET_ID],
                "responses": {"200": reply("the dataset", ref("Dataset")), **NO_DATASET}},
        "delete": {"summary": "Delete a dataset and every version (refused while a job that has not ended uses one)",
                   "parameters": [DATASET_ID],
                   "responses": {"204": {"description": "deleted"}, **NO_DATASET,
                                 "409": error("used by jobs (the message names them), or still being unpacked or inspected")}},
        "patch": {"summary": "Change who sees the dataset (owner or admin)", "parameters": [DATASET_ID],
                  "requestBody": body({"type": "object", "required": ["visibility"], "properties": {"visibility": VISIBILITY}}),
                  "responses": {"200": reply("the dataset", ref("Dataset")), **NO_DATASET,
                                "400": error("not a visibility the caller may give")}}},
    "/datasets/{dataset_id}/stats": {"get": {
        "summary": "The statistics of the newest ready version", "parameters": [DATASET_ID],
        "responses": {"200": reply("statistics", {"type": "object"}), **NO_DATASET}}},
    "/datasets/{dataset_id}/versions": {"get": {
        "summary": "The dataset's versions", "parameters": [DATASET_ID],
        "responses": {"200": reply("versions", {"type": "object", "properties": {
            "versions": {"type": "array", "items": ref("DatasetVersion")}}}), **NO_DATASET}}},
    "/datasets/{dataset_id}/versions/{number}": {
        "get": {"summary": "One version: state, hash, size, task, format", "parameters": [DATASET_ID, NUMBER],
                "responses": {"200": VERSION, **NO_DATASET}},
        "delete": {"summary": "Delete a version (refused while a job that has not ended uses it)",
                   "parameters": [DATASET_ID, NUMBER],
                   "responses": {"204": {"description": "deleted"}, **NO_DATASET,
                                 "409": error("used by jobs (the message names them), or still being unpacked or inspected")}}},
    **{f"/datasets/{{dataset_id}}/versions/{{number}}/{name}": {"get": {
        "summary": summary, "parameters": [DATASET_ID, NUMBER], "responses": INSPECTION}}
       for name, summary in (("report", "What the inspection found: ok, task, format, splits, class names, counts, problems"),
                             ("stats", "Statistics: images per split and class, sizes, boxes, masks, keypoints"),
                             ("progress", "The inspection's progress while it runs"))},
    "/datasets/{dataset_id}/versions/{number}/previews": {"get": {
        "summary": "Preview images with annotations drawn", "parameters": [DATASET_ID, NUMBER],
        "responses": {"200": reply("previews", {"type": "object", "properties": {"previews": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "url": {"type": "string"}}}}}}), **NO_DATASET}}},
    "/datasets/{dataset_id}/versions/{number}/previews/{name}": {"get": {
        "summary": "One preview", "parameters": [DATASET_ID, NUMBER, path_param("name")],
        "responses": {"200": {"description": "the image", "content": {"image/jpeg": {}}}, **NO_DATASET}}},
}


def merge(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    paths.update(PATHS)
    schemas.update(SCHEMAS)
