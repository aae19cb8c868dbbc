"""The OpenAPI 3 document of ``/api/v1``, served at ``/api/v1/openapi.json``.

Written by hand next to the routes; a test checks that every route is documented and every
documented path is routed.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from cauchy.manifest import EXPORTS, NAME_RE
from services.api import auth_openapi, datasets_openapi, deployments_openapi, nodes_openapi
from services.api.jobs import MAX_OFFSET, MAX_PAGE
from services.api.limits import TEXT_PATTERN
from services.api.submission import PHASES, PRIORITY_RANGE
from services.auth.seam import open_to_anonymous
from services.jobs.files import LOGS, MAX_CHUNK, MAX_METRICS_PAGE
from services.jobs.store import STATES

bp = Blueprint("openapi", __name__, url_prefix="/api/v1")


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return json_response(description, ref("Error"))


JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
NOT_FOUND = {"404": error("no such job")}
TOO_MANY = {"429": error("a per-user or overall limit (see Retry-After)")}
OFFSET = {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}
STATE_LIST = "(" + "|".join(STATES) + ")"
NULLABLE_NUMBER = {"type": ["number", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message", "field"], "properties": {
            "code": {"type": "string", "example": "invalid_hypes"},
            "message": {"type": "string", "example": "solver.lr.base_lr: expected a number > 0, got \"fast\""},
            "field": {"type": ["string", "null"], "example": "hypes.solver.lr.base_lr"}}}},
    },
    "JobRequest": {
        "type": "object", "required": ["hypes"], "additionalProperties": False,
        "properties": {
            "hypes": {"oneOf": [{"type": "object", "description": "a hypes document"},
                                {"type": "string", "minLength": 1, "maxLength": 200, "pattern": TEXT_PATTERN,
                                 "description": "a file under hypes/, e.g. cls/image_classifier_smallcnn_digits.json"}]},
            "overrides": {"oneOf": [{"type": "array", "items": {"type": "string"}, "example": ["solver.max_iters=2"]},
                                    {"type": "object", "example": {"solver.lr.base_lr": 0.01}}]},
            "phase": {"type": "string", "enum": list(PHASES), "default": "train"},
            "resources": {"type": "object", "additionalProperties": False, "properties": {
                "gpus": {"type": "integer", "minimum": 0, "default": 0},
                "cpu_slots": {"type": "integer", "minimum": 1, "default": 1,
                              "description": "a CPU job's slots (default: its processes)"},
                "processes": {"type": "integer", "minimum": 1, "default": 1,
                              "description": "a CPU job's ranks (gloo), one a slot; a GPU job runs one a GPU"},
                "nodes": {"type": "integer", "minimum": 1, "default": 1,
                          "description": "machines the job spans (the ray executor; more than 1 needs it): its "
                                         "gpus, cpu_slots and processes are each node's"},
                "memory_mb": {"type": "integer", "minimum": 0, "description": "stated memory; also its memory limit"},
                "time_limit_s": {"type": "number", "exclusiveMinimum": 0,
                                 "description": "stopped (with a checkpoint) after this; lets it backfill"}}},
            "gpus": {"type": "integer", "minimum": 0, "description": "short for resources.gpus"},
            "priority": {"oneOf": [{"type": "integer", "minimum": PRIORITY_RANGE[0], "maximum": PRIORITY_RANGE[1]},
                                   {"type": "string", "enum": ["low", "normal", "high"]}], "default": 0,
                         "description": "above normal (0) needs an admin's grant; low = -10, high = 10"},
            "preemptible": {"type": "boolean", "default": True,
                            "description": "training jobs may be stopped with a checkpoint and requeued"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": TEXT_PATTERN},
            "user": {"type": "string", "minLength": 1, "maxLength": 100, "pattern": TEXT_PATTERN,
                     "description": "the owner: the caller; an admin may name another user"},
            "visibility": auth_openapi.VISIBILITY,
            "from_job": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1,
                         "description": "test phase: evaluate that job's best (else latest) checkpoint"},
        },
    },
    "JobSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "user": {"type": "string", "description": "the owner"},
            "visibility": auth_openapi.VISIBILITY,
            "phase": {"type": "string"}, "state": {"type": "string", "enum": list(STATES)},
            "priority": {"type": "integer"},
            "resources": {"type": "object", "properties": {
                "gpus": {"type": "integer"}, "assigned_gpus": {"type": "array", "items": {"type": "string"}}}},
            "created_at": {"type": "number"}, "started_at": NULLABLE_NUMBER, "ended_at": NULLABLE_NUMBER,
            "exit_code": {"type": ["integer", "null"]}, "exit_signal": {"type": ["integer", "null"]},
            "reason": {"type": ["string", "null"], "description": "why it ended: exception, exit code, signal, memory"},
            "hypes_name": {"type": ["string", "null"]}, "from_job": {"type": ["integer", "null"]},
            "resumable": {"type": "boolean", "description": "training stopped with work left (the job page also "
                                                            "needs a checkpoint): POST /jobs/{id}/resume continues it"},
        },
    },
    "Job": {
        "allOf": [ref("JobSummary"), {"type": "object", "properties": {
            "queue_position": {"type": ["integer", "null"], "description": "1 = next to start (while queued)"},
            "queue": {"type": ["object", "null"], "description": "while queued: why it waits", "properties": {
                "position": {"type": ["integer", "null"]}, "reason": {"type": "string", "example": "needs 2 GPUs, 1 free"},
                "estimated_start": NULLABLE_NUMBER}},
            "priority_class": {"type": "string", "enum": ["low", "normal", "high"]},
            "preemptible": {"type": "boolean"},
            "preemptions": {"type": "array", "items": {"type": "object", "properties": {
                "at": {"type": "number"}, "for_job": {"type": "integer"}, "checkpoint": {"type": ["string", "null"]},
                "how": {"type": "string"}, "ran_s": NULLABLE_NUMBER}}},
            "duration_s": NULLABLE_NUMBER,
            "hypes": {"type": "object"}, "overrides": {"type": "array", "items": {"type": "string"}},
            "resume_from": {"type": ["string", "null"]}, "job_dir": {"type": "string"},
            "last_checkpoint": {"type": ["string", "null"]},
            "hypes_upgrade": {"type": ["object", "null"], "description": "an old torchcv file's keys, translated "
                                                                         "and ignored (docs/legacy_hypes.md)"},
            "processes": {"type": "array", "items": {"type": "object", "properties": {
                "role": {"type": "string", "enum": ["launcher", "task", "worker", "visdom"]},
                "pid": {"type": "integer"}, "cpu_percent": NULLABLE_NUMBER, "rss_mb": {"type": "number"}}}},
            "visdom": ref("Visdom"),
            "links": {"type": "object", "additionalProperties": {"type": "string"}},
        }}],
    },
    "Visdom": {
        "type": "object",
        "properties": {"url": {"type": "string", "example": "/visdom/12/"}, "port": {"type": ["integer", "null"]},
                       "direct_url": {"type": "string"}, "up": {"type": "boolean"}, "until": NULLABLE_NUMBER},
    },
    "JobList": {
        "type": "object",
        "properties": {"jobs": {"type": "array", "items": ref("JobSummary")}, "total": {"type": "integer"},
                       "limit": {"type": "integer"}, "offset": {"type": "integer"}},
    },
    "LogChunk": {
        "type": "object",
        "properties": {"stream": {"type": "string", "enum": list(LOGS)}, "offset": {"type": "integer"},
                       "next_offset": {"type": "integer"}, "size": {"type": "integer"}, "text": {"type": "string"}},
    },
    "Metrics": {
        "type": "object",
        "properties": {"events": {"type": "array", "items": {"type": "object", "properties": {
            "step": {"type": "integer"}, "epoch": {"type": "number"}, "phase": {"type": "string"},
            "name": {"type": "string"}, "value": {"type": "number"}, "time": {"type": "number"}}}},
            "next": {"type": "integer", "description": "pass as since= to get only newer events"}},
    },
    "Artifacts": {
        "type": "object",
        "properties": {"artifacts": {"type": "array", "items": {"type": "object", "properties": {
            "path": {"type": "string"}, "size": {"type": "integer"}, "modified": {"type": "number"},
            "url": {"type": "string"}}}}},
    },
    "Weights": {
        "type": "object",
        "properties": {
            "name": {"type": "string"}, "file": {"type": "string"}, "url": {"type": "string", "example": "/weights/small_cnn_digits.pth"},
            "task": {"type": "string"}, "architecture": {"type": "string"}, "num_classes": {"type": "integer"},
            "class_names": {"type": "array", "items": {"type": "string"}},
            "input_size": {"type": ["array", "null"], "items": {"type": "integer"}},
            "sha256": {"type": "string"}, "size": {"type": "integer"},
            "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
            "source_job": {"type": ["integer", "null"]}, "created": {"type": "number"},
            "exports": {"type": "object", "description": "by format (onnx, torchscript, edge): the exported file",
                        "additionalProperties": ref("Export")}},
    },
    "Export": {
        "type": "object",
        "properties": {
            "format": {"type": "string", "enum": list(EXPORTS)}, "file": {"type": "string"},
            "url": {"type": "string", "example": "/weights/small_cnn_digits.onnx"},
            "sha256": {"type": "string"}, "size": {"type": "integer"}, "created": {"type": "number"},
            "opset": {"type": "integer", "description": "ONNX opset (onnx and edge)"},
            "input": {"type": "object", "description": "name and shape of the graph's input (normalised float32 images)"},
            "outputs": {"type": "array", "items": {"type": "string"}},
            "seconds": {"type": "number", "description": "how long the export itself took"}},
    },
    "WeightsList": {"type": "object", "properties": {"weights": {"type": "array", "items": ref("Weights")}}},
}

JOB = json_response("the job", ref("Job"))
PATHS: dict[str, Any] = {
    "/jobs": {
        "post": {"summary": "Submit a job; the hypes are validated at once (a bad key is a 400 naming it)",
                 "requestBody": {"required": True, "content": {"application/json": {"schema": ref("JobRequest")}}},
                 "responses": {"201": json_response("queued", ref("Job")),
                               "400": error("invalid request or hypes, or a limit of the hypes (the field names it)"),
                               "403": error("priority above the caller's maximum, or another user's job (not admin)"),
                               "413": error("request body too large"), **TOO_MANY}},
        "get": {"summary": "List jobs, newest first",
                "parameters": [
                    {"name": "state", "in": "query",
                     "schema": {"type": "string", "pattern": f"^({STATE_LIST}(,{STATE_LIST})*)?$"},
                     "description": "comma-separated: " + ",".join(STATES)},
                    {"name": "user", "in": "query", "schema": {"type": "string"}},
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": 50}},
                    {"name": "offset", "in": "query", "schema": {**OFFSET, "default": 0}}],
                "responses": {"200": json_response("a page of jobs", ref("JobList")), "400": error("bad filter")}},
    },
    "/jobs/{job_id}": {"get": {"summary": "A job: state, times, exit reason, resources, queue position, Visdom, processes",
                               "parameters": [JOB_ID], "responses": {"200": JOB, **NOT_FOUND}}},
    "/jobs/{job_id}/stop": {"post": {
        "summary": "Stop: a queued job is cancelled; a running one gets SIGTERM, a grace period to save a checkpoint, then SIGKILL",
        "parameters": [JOB_ID], "responses": {"202": JOB, **NOT_FOUND, "409": error("the job already ended")}}},
    "/jobs/{job_id}/resume": {"post": {
        "summary": "A new job continuing from this job's last checkpoint",
        "parameters": [JOB_ID], "responses": {"201": JOB, **NOT_FOUND, "409": error("still active, or no checkpoint"),
                                              **TOO_MANY}}},
    "/jobs/{job_id}/logs": {"get": {
        "summary": "stdout/stderr of the task, incrementally (pass next_offset back as offset)",
        "parameters": [JOB_ID,
                       {"name": "stream", "in": "query", "schema": {"type": "string", "enum": list(LOGS), "default": "stdout"}},
                       {"name": "offset", "in": "query", "schema": OFFSET, "description": "omit for the last 64 KiB"},
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_CHUNK}}],
        "responses": {"200": json_response("a chunk of the log", ref("LogChunk")), **NOT_FOUND, "400": error("bad query")}}},
    "/jobs/{job_id}/metrics": {"get": {
        "summary": "Events of metrics.jsonl after the cursor since",
        "parameters": [JOB_ID, {"name": "since", "in": "query", "schema": {**OFFSET, "default": 0},
                                "description": "0, or a next returned before: other bytes are not the start of a line (400)"},
                       {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_METRICS_PAGE}}],
        "responses": {"200": json_response("events", ref("Metrics")), **NOT_FOUND,
                      "400": error("bad query, or since inside a line")}}},
    "/jobs/{job_id}/artifacts": {"get": {
        "summary": "Files of the job: checkpoints, results, predictions, hypes, metrics, logs",
        "parameters": [JOB_ID], "responses": {"200": json_response("files", ref("Artifacts")), **NOT_FOUND}}},
    "/jobs/{job_id}/artifacts/{path}": {"get": {
        "summary": "Download one artifact",
        "parameters": [JOB_ID, {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}],
        "responses": {"200": {"description": "the file", "content": {"application/octet-stream": {}}}, **NOT_FOUND}}},
    "/jobs/{job_id}/visdom": {
        "post": {"summary": "Make sure the job's Visdom is up, starting it again from the saved env if needed",
                 "parameters": [JOB_ID], "responses": {"200": json_response("the viewer", ref("Visdom")), **NOT_FOUND,
                                                       "409": error("not started yet"), "503": error("Visdom did not start"),
                                                       **TOO_MANY}},
        "delete": {"summary": "Shut an ended job's Visdom now",
                   "parameters": [JOB_ID], "responses": {"200": json_response("the viewer", ref("Visdom")), **NOT_FOUND,
                                                         "409": error("no viewer, or the job still runs")}}},
    "/jobs/{job_id}/charts": {"get": {
        "summary": "Open the charts: starts the viewer if needed and redirects to /visdom/<id>/",
        "parameters": [JOB_ID], "responses": {"302": {"description": "to the Visdom page"}, **NOT_FOUND,
                                              "409": error("not started yet"), "503": error("Visdom did not start"),
                                              **TOO_MANY}}},
    "/weights": {"get": {"summary": "The weights host's manifest, newest first; each file is at its url (/weights/<file>)",
                         "responses": {"200": json_response("published weights", ref("WeightsList"))}}},
    "/jobs/{job_id}/publish": {"post": {
        "summary": "Publish an ended job's best checkpoint (else its latest) as pretrained weights under a new name",
        "parameters": [JOB_ID],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["name"], "properties": {"name": {"type": "string", "pattern": f"^{NAME_RE.pattern}$",
                                                                            "example": "small_cnn_digits"},
                                                "visibility": {**auth_openapi.VISIBILITY, "default": "public"}}}}}},
        "responses": {"201": json_response("the manifest entry", ref("Weights")),
                      "400": error("bad name or visibility, or a checkpoint that cannot be exported"), **NOT_FOUND,
                      "409": error("still active, no checkpoint, or the name is taken")}}},
    "/weights/{name}/export": {"post": {
        "summary": "Export published weights as ONNX, TorchScript or an edge bundle (their owner or an admin); the "
                   "file joins the weights host beside the weights, recorded with its sha256 in the entry's exports",
        "parameters": [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": {
            "type": "object", "required": ["format"], "additionalProperties": False,
            "properties": {"format": {"type": "string", "enum": list(EXPORTS)}}}}}},
        "responses": {"201": json_response("the manifest entry with the new export", ref("Weights")),
                      "400": error("bad body or format (the field names it)"),
                      "403": error("another user's weights (not admin)"),
                      "404": error("no such weights (or not visible to the caller)"),
                      "409": error("no source job to rebuild the model from, or a model the export cannot take")}}},
    "/templates": {"get": {"summary": "The hypes files under hypes/ (by task) that a new job can start from",
                           "responses": {"200": json_response("templates", {"type": "object", "properties": {
                               "templates": {"type": "array", "items": {"type": "object", "properties": {
                                   "name": {"type": "string", "example": "cls/image_classifier_smallcnn_digits.json"},
                                   "task": {"type": "string"}, "hypes": {"type": ["object", "null"]},
                                   "error": {"type": "string", "description": "why the file does not load"}}}}}})}}},
    "/scheduler": {"get": {"summary": "The scheduling policy, capacity, shares and quotas, and each user's usage",
                           "responses": {"200": json_response("scheduler", {"type": "object", "properties": {
                               "policy": {"type": "string", "enum": ["fifo", "priority", "fairshare"]},
                               "half_life_s": {"type": "number"}, "capacity": {"type": "object"},
                               "shares": {"type": "object"}, "quotas": {"type": "object"},
                               "queued": {"type": "integer"}, "running": {"type": "integer"},
                               "users": {"type": "array", "items": {"type": "object"}}}})}}},
    "/health": {"get": {"summary": "Liveness and resources", "responses": {"200": json_response("ok", {"type": "object"})}}},
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})}}},
}

datasets_openapi.merge(PATHS, SCHEMAS)
auth_openapi.merge(PATHS, SCHEMAS)
deployments_openapi.merge(PATHS, SCHEMAS)
nodes_openapi.merge(PATHS, SCHEMAS)

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "Cauchy control service", "version": "1",
             "description": "Jobs on shared GPU servers. Errors are {\"error\": {\"code\", \"message\", \"field\"}}."},
    "servers": [{"url": "/api/v1"}],
    "paths": PATHS,
    "components": {"schemas": SCHEMAS, "securitySchemes": auth_openapi.SECURITY_SCHEMES},
    "security": [{"token": []}, {"cookie": []}],
}


@bp.get("/openapi.json")
@open_to_anonymous
def document() -> ResponseReturnValue:
    return jsonify(DOCUMENT)
