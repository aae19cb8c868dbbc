"""The OpenAPI part of the nodes routes (``services/api/nodes.py``); ``openapi.py`` merges it into the document."""
from __future__ import annotations

from typing import Any

from services.api.auth_openapi import error, path_param, ref, reply
from services.executors.node_run import TOKEN_HEADER

JOB_ID = path_param("job_id", "integer")
FILE = {"name": "path", "in": "path", "required": True, "schema": {"type": "string"},
        "description": "a path in the job directory, e.g. metrics.jsonl or checkpoints/latest.pth"}
JOB_TOKEN = {"name": TOKEN_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
             "description": "the token of the job's current run (given to its node by the Ray executor)"}
FORBIDDEN = {"403": error("not the token of the job's current run, or the job is not running")}
NOT_FOUND = {"404": error("no such job, or no such file")}

SCHEMAS: dict[str, Any] = {
    "Node": {"type": "object", "properties": {
        "name": {"type": "string"}, "node_id": {"type": "string"}, "address": {"type": "string"},
        "gpus": {"type": "integer"}, "cpus": {"type": "integer"}, "memory_mb": {"type": "integer"},
        "drained": {"type": "boolean"}, "jobs": {"type": "array", "items": {"type": "integer"}},
        "load": {"type": "object", "properties": {"gpus": {"type": "integer"}, "cpu_slots": {"type": "integer"}}}}},
}

PATHS: dict[str, Any] = {
    "/jobs/{job_id}/node/files/{path}": {
        "get": {"summary": "(a job's node) Download a file of the job directory: its hypes, the checkpoint it resumes",
                "security": [], "parameters": [JOB_ID, FILE, JOB_TOKEN],
                "responses": {"200": {"description": "the file", "content": {"application/octet-stream": {}}},
                              **FORBIDDEN, **NOT_FOUND}},
        "put": {"summary": "(a job's node) Write at an offset: logs and metrics appended, other files renamed into "
                           "place at done=1",
                "security": [],
                "parameters": [JOB_ID, FILE, JOB_TOKEN,
                               {"name": "offset", "in": "query", "required": True,
                                "schema": {"type": "string", "pattern": "^[0-9]+$"},
                                "description": "the size the service has (0 starts the file again)"},
                               {"name": "done", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}}],
                "requestBody": {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": {"200": reply("written", {"type": "object", "properties": {
                                  "path": {"type": "string"}, "size": {"type": "integer"}}}),
                              "400": error("a path a node may not write, or a bad offset"), **FORBIDDEN, **NOT_FOUND,
                              "409": reply("the offset is not the size the service has", {"type": "object", "properties": {
                                  "error": {"type": "object"}, "size": {"type": "integer"}}})}},
    },
    "/nodes": {"get": {"summary": "(admin) The executor's nodes with their GPUs, load and jobs, and how to join one",
                       "responses": {"200": reply("nodes", {"type": "object", "properties": {
                           "executor": {"type": "string", "enum": ["local", "ray"]},
                           "nodes": {"type": "array", "items": ref("Node")},
                           "key": {"type": "string", "description": "the pairing key (Ray's token)"},
                           "join": {"type": "string", "description": "the command that joins a machine"}}}),
                           "401": error("not signed in"), "403": error("not an admin")}}},
    "/nodes/{name}/drain": {"post": {
        "summary": "(admin) No new job on the node (its running jobs finish); {\"drain\": false} takes it back",
        "parameters": [path_param("name")],
        "requestBody": {"required": False, "content": {"application/json": {"schema": {
            "type": "object", "additionalProperties": False, "properties": {"drain": {"type": "boolean", "default": True}}}}}},
        "responses": {"200": reply("drained", {"type": "object", "properties": {
            "node": {"type": "string"}, "drained": {"type": "boolean"}}}),
            "400": error("a bad body"), "401": error("not signed in"), "403": error("not an admin"),
            "404": error("no such node"), "409": error("the local executor has no nodes")}}},
}


def merge(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    paths.update(PATHS)
    schemas.update(SCHEMAS)
