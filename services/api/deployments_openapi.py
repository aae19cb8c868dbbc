"""The OpenAPI part of deployments (``services/api/deployments.py``); ``openapi.py`` merges it into the document.

``/serve/<name>/predict`` and the replicas' other routes are outside ``/api/v1``: docs/serving.md describes them."""
from __future__ import annotations

from typing import Any

from cauchy.manifest import NAME_RE
from services.api.auth_openapi import VISIBILITY, body, error, path_param, ref, reply
from services.api.deployments import DEFAULTS, MAX_BATCH, MAX_WAIT_MS
from services.serving.models import BACKENDS, DEVICES, REPLICA_STATES

NAME = {"type": "string", "pattern": f"^{NAME_RE.pattern}$"}
NO_DEPLOYMENT = {"404": error("no such deployment, or not one the caller may read")}

SCHEMAS: dict[str, Any] = {
    "Deployment": {"type": "object", "properties": {
        "name": NAME, "weights": {"type": "string"}, "owner": {"type": "string"}, "visibility": VISIBILITY,
        "replicas": {"type": "integer"}, "device": {"type": "string", "enum": list(DEVICES)},
        "max_batch": {"type": "integer"}, "max_wait_ms": {"type": "number"},
        "backend": {"type": "string", "enum": list(BACKENDS)}, "created_at": {"type": "number"},
        "status": {"type": "string", "enum": ["ready", "partial", "starting", "waiting", "failed", "stopped"]},
        "url": {"type": "string", "example": "/serve/small_cnn_digits/predict",
                "description": "POST images here: raw body, multipart files or {\"images\": [base64]}; ?draw=1"},
        "replica_states": {"type": "array", "items": {"type": "object", "properties": {
            "index": {"type": "integer"}, "state": {"type": "string", "enum": list(REPLICA_STATES)},
            "port": {"type": ["integer", "null"]}, "gpu": {"type": ["string", "null"]},
            "pid": {"type": ["integer", "null"]}, "restarts": {"type": "integer"},
            "reason": {"type": ["string", "null"]}, "started_at": {"type": ["number", "null"]}}}},
        "metrics": {"type": "object", "description": "GET of one deployment only: requests, images, errors, batches, "
                                                     "batch_sizes {size: count}, mean_batch, latency_ms {p50, p99}, "
                                                     "and each ready replica's own"},
        "examples": {"type": "object", "description": "copy-ready curl and Python calls",
                     "additionalProperties": {"type": "string"}}}},
}

PATHS: dict[str, Any] = {
    "/deployments": {
        "get": {"summary": "The deployments the caller may read, newest first, with their status",
                "responses": {"200": reply("deployments", {"type": "object", "properties": {
                    "deployments": {"type": "array", "items": ref("Deployment")}}})}},
        "post": {"summary": "Serve published weights over HTTP at /serve/<name>/ (model-server replicas, each "
                            "holding a CPU slot or a GPU; requests batched dynamically)",
                 "requestBody": body({"type": "object", "required": ["weights"], "additionalProperties": False,
                                      "properties": {
                     "weights": {"type": "string", "example": "small_cnn_digits"},
                     "name": {**NAME, "description": "the deployment's name; the weights' by default"},
                     "replicas": {"type": "integer", "minimum": 0, "default": DEFAULTS["replicas"],
                                  "description": "at most CAUCHY_SERVE_MAX_REPLICAS; 0 deploys none yet"},
                     "device": {"type": "string", "enum": list(DEVICES), "default": DEFAULTS["device"]},
                     "max_batch": {"type": "integer", "minimum": 1, "maximum": MAX_BATCH,
                                   "default": DEFAULTS["max_batch"]},
                     "max_wait_ms": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_MS,
                                     "default": DEFAULTS["max_wait_ms"],
                                     "description": "how long the first request of a batch waits for others"},
                     "backend": {"type": "string", "enum": list(BACKENDS), "default": DEFAULTS["backend"]},
                     "visibility": {**VISIBILITY, "description": "who may call it; the weights' by default"}}}),
                 "responses": {"201": reply("the deployment, its replicas waiting or starting", ref("Deployment")),
                               "400": error("unknown or unservable weights, or a bad field (named)"),
                               "409": error("a deployment of that name exists")}}},
    "/deployments/{name}": {
        "get": {"summary": "A deployment: status, replicas (health, readiness, restarts) and metrics",
                "parameters": [path_param("name")],
                "responses": {"200": reply("the deployment", ref("Deployment")), **NO_DEPLOYMENT}},
        "delete": {"summary": "End the deployment's replicas and forget it (owner or admin)",
                   "parameters": [path_param("name")],
                   "responses": {"204": {"description": "deleted"}, **NO_DEPLOYMENT,
                                 "403": error("not the owner")}}},
}


def merge(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    paths.update(PATHS)
    schemas.update(SCHEMAS)
