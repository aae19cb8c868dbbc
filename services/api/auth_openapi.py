"""The OpenAPI part of identity and sharing: sign-in, tokens, users, groups, and the visibility
routes; ``openapi.py`` merges it into the document."""
from __future__ import annotations

from typing import Any


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON body; fields it does not name are refused (a 400 naming them)."""
    return {"required": True, "content": {"application/json": {"schema": {"additionalProperties": False, **schema}}}}


def reply(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def error(description: str) -> dict[str, Any]:
    return reply(description, ref("Error"))


def path_param(name: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": kind}}


VISIBILITY = {"type": "string", "pattern": "^(private|public|group:[A-Za-z0-9][A-Za-z0-9_.-]*)$",
              "description": "private (owner and admins), public (every signed-in user) or group:<name>"}
DENIED = {"401": error("not signed in, or an unknown, revoked or expired token"),
          "403": error("not allowed (or a cookie request without X-CSRF-Token)")}
ADMIN_ONLY = {**DENIED, "403": error("only an admin may do this")}
NAME = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"}
DISPLAY_NAME = {"type": "string", "maxLength": 200, "pattern": r"^[\w .,:;()@#+=/'-]*$",
                "description": "no control or format characters"}

SCHEMAS: dict[str, Any] = {
    "Me": {"type": "object", "properties": {
        "name": {"type": "string"}, "display_name": {"type": "string"}, "role": {"type": "string", "enum": ["admin", "member"]},
        "groups": {"type": "array", "items": {"type": "string"}},
        "max_priority": {"type": "integer", "description": "the highest priority this user may give a job"}}},
    "Session": {"type": "object", "properties": {
        "user": ref("Me"), "csrf_token": {"type": ["string", "null"],
                                          "description": "send as X-CSRF-Token on every state-changing cookie request"}}},
    "User": {"type": "object", "properties": {
        "name": {"type": "string"}, "display_name": {"type": "string"}, "role": {"type": "string"},
        "groups": {"type": "array", "items": {"type": "string"}}, "max_priority": {"type": "integer"},
        "disabled": {"type": "boolean"}, "created_at": {"type": "number"}}},
    "Group": {"type": "object", "properties": {
        "name": {"type": "string"}, "created_at": {"type": "number"},
        "members": {"type": "array", "items": {"type": "object", "properties": {
            "user": {"type": "string"}, "admin": {"type": "boolean"}}}}}},
    "Token": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "created_at": {"type": "number"},
        "last_used_at": {"type": ["number", "null"]}, "expires_at": {"type": ["number", "null"]},
        "token": {"type": "string", "description": "only in the reply that creates it: it is stored as a hash"}}},
}

PATHS: dict[str, Any] = {
    "/auth/login": {"post": {
        "summary": "Sign in: sets the session cookie (HttpOnly, SameSite=Lax) and returns the CSRF token",
        "security": [],
        "requestBody": body({"type": "object", "required": ["name", "password"], "properties": {
            "name": {"type": "string"}, "password": {"type": "string"}}}),
        "responses": {"200": reply("signed in", ref("Session")), "400": error("bad body"),
                      "401": error("bad_credentials"), "429": error("too many failed sign-ins (see Retry-After)")}}},
    "/auth/logout": {"post": {"summary": "Sign out (clears the session cookie)", "security": [],
                              "responses": {"204": {"description": "signed out"}, "403": DENIED["403"]}}},
    "/auth/me": {"get": {"summary": "The signed-in user and the session's CSRF token (null with a token)",
                         "responses": {"200": reply("the caller", ref("Session")), "401": DENIED["401"]}}},
    "/tokens": {
        "get": {"summary": "The caller's API tokens (never the tokens themselves)",
                "responses": {"200": reply("tokens", {"type": "object", "properties": {
                    "tokens": {"type": "array", "items": ref("Token")}}}), **DENIED}},
        "post": {"summary": "A new API token, shown once in the reply",
                 "requestBody": body({"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
                     "name": {"type": "string", "minLength": 1, "maxLength": 100},
                     "expires_in_days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650}}}),
                 "responses": {"201": reply("the token", ref("Token")), "400": error("bad body"), **DENIED}}},
    "/tokens/{token_id}": {"delete": {
        "summary": "Revoke one of the caller's tokens", "parameters": [path_param("token_id", "integer")],
        "responses": {"204": {"description": "revoked"}, "404": error("no such token of the caller"), **DENIED}}},
    "/users": {
        "get": {"summary": "Every user (admin)", "responses": {"200": reply("users", {"type": "object", "properties": {
            "users": {"type": "array", "items": ref("User")}}}), **ADMIN_ONLY}},
        "post": {"summary": "Add a user (admin)",
                 "requestBody": body({"type": "object", "required": ["name", "password"], "additionalProperties": False,
                                      "properties": {"name": NAME, "password": {"type": "string", "minLength": 8},
                                                     "display_name": DISPLAY_NAME,
                                                     "role": {"type": "string", "enum": ["admin", "member"]},
                                                     "max_priority": {"type": "integer", "minimum": 0, "maximum": 100}}}),
                 "responses": {"201": reply("the user", ref("User")), "400": error("bad field"),
                               "409": error("the name is taken"), **ADMIN_ONLY}}},
    "/users/{name}": {"patch": {
        "summary": "Change a user (admin): display_name, password, role, disabled, max_priority",
        "parameters": [path_param("name")],
        "requestBody": body({"type": "object", "additionalProperties": False, "properties": {
            "display_name": DISPLAY_NAME, "password": {"type": "string", "minLength": 8},
            "role": {"type": "string", "enum": ["admin", "member"]}, "disabled": {"type": "boolean"},
            "max_priority": {"type": "integer", "minimum": 0, "maximum": 100}}}),
        "responses": {"200": reply("the user", ref("User")), "400": error("bad field"), "404": error("no such user"),
                      "409": error("would leave no enabled admin"), **ADMIN_ONLY}}},
    "/groups": {
        "get": {"summary": "Every group and its members (admin)", "responses": {"200": reply("groups", {
            "type": "object", "properties": {"groups": {"type": "array", "items": ref("Group")}}}), **ADMIN_ONLY}},
        "post": {"summary": "Add a group (admin)",
                 "requestBody": body({"type": "object", "required": ["name"], "properties": {"name": NAME}}),
                 "responses": {"201": reply("the group", ref("Group")), "400": error("bad name"),
                               "409": error("the name is taken"), **ADMIN_ONLY}}},
    "/groups/{name}/members": {"post": {
        "summary": "Add a member or change their group-admin flag (admins and the group's admins)",
        "parameters": [path_param("name")],
        "requestBody": body({"type": "object", "required": ["user"], "properties": {
            "user": NAME, "admin": {"type": "boolean", "default": False}}}),
        "responses": {"200": reply("the group", ref("Group")), "400": error("bad body"),
                      "404": error("no such group or user"), **DENIED}}},
    "/groups/{name}/members/{user}": {"delete": {
        "summary": "Remove a member (admins and the group's admins)", "parameters": [path_param("name"), path_param("user")],
        "responses": {"200": reply("the group", ref("Group")), "404": error("no such group or member"), **DENIED}}},
    "/weights/{name}": {"patch": {
        "summary": "Change who sees published weights (their owner or an admin)", "parameters": [path_param("name")],
        "requestBody": body({"type": "object", "required": ["visibility"], "properties": {"visibility": VISIBILITY}}),
        "responses": {"200": reply("the manifest entry", ref("Weights")), "400": error("bad visibility"),
                      "404": error("no such weights (or not visible to the caller)"), **DENIED}}},
}

JOB_PATCH: dict[str, Any] = {
    "summary": "Change who sees a job (its owner or an admin)",
    "parameters": [path_param("job_id", "integer")],
    "requestBody": body({"type": "object", "required": ["visibility"], "properties": {"visibility": VISIBILITY}}),
    "responses": {"200": reply("the job", ref("Job")), "400": error("bad visibility"),
                  "404": error("no such job (or not visible to the caller)"), **DENIED}}

SECURITY_SCHEMES = {
    "token": {"type": "http", "scheme": "bearer", "description": "a personal API token (POST /tokens, cauchy login)"},
    "cookie": {"type": "apiKey", "in": "cookie", "name": "cauchy_session",
               "description": "the session of POST /auth/login; state-changing requests also send X-CSRF-Token"},
}


OPEN_PATHS = ("/health", "/openapi.json")  # answered without signing in (as is /auth/login)


def merge(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """Add these routes and schemas to the document's."""
    for path, operations in PATHS.items():
        paths.setdefault(path, {}).update(operations)
    paths["/jobs/{job_id}"]["patch"] = JOB_PATCH
    schemas.update(SCHEMAS)
    for path in OPEN_PATHS:
        paths[path]["get"]["security"] = []
    for operations in paths.values():
        for operation in operations.values():
            if operation.get("security") != []:
                operation["responses"] = {**DENIED, **operation["responses"]}
            else:  # open, but a token that is sent must be valid
                operation["responses"] = {"401": error("an unknown, revoked or expired token was sent"),
                                          **operation["responses"]}
