"""One replica of a deployment: a small HTTP server (waitress) in front of one model.

``python -m services.serving.model_server --weights-dir D --weights NAME --port P [...]``, started and
supervised by ``services.serving.replicas``. torch is imported in ``main`` only (this module is
imported by the service for its names).

Routes (any prefix before the last segment is ignored, so nginx passes ``/serve/<name>/predict`` as is):

- ``POST .../predict``: one image as the raw body, several as multipart files, or JSON
  ``{"images": [base64, ...]}``; answers ``{"predictions": [...]}``, one per image in order, as
  ``cauchy.inference.Predictor.answer`` gives them (original image coordinates). ``?draw=1`` adds each
  image's drawing as a base64 PNG; with ``Accept: image/png`` and one image, the PNG itself is the answer.
  An image that does not decode is a 400 naming it; nothing of the request runs then.
- ``GET .../health``: 200 while the process answers; ``GET .../ready``: 200 once the model is loaded,
  else 503 (with the load error, if it failed); ``GET .../metrics``: ``batching.Metrics``.

Decoding and pre-processing run in waitress's request threads; the model runs in the batcher's one
thread (``batching.Batcher``), which is the model's lock.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from flask.typing import ResponseReturnValue

from services.api.errors import error_body
from services.serving.batching import Batcher, Metrics

MAX_IMAGES = 64  # per request
log = logging.getLogger("cauchy.model_server")


class BadInput(ValueError):
    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class State:
    """What the routes share: the predictor and batcher once loaded, or why loading failed."""

    name: str
    metrics: Metrics = field(default_factory=Metrics)
    predictor: Any = None
    batcher: Batcher | None = None
    error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)


def request_images() -> list[tuple[str, bytes]]:
    """The request's images as ``(name, encoded bytes)``: multipart files, JSON base64, or the raw body."""
    if request.mimetype == "multipart/form-data":
        images = [(upload.filename or key, upload.read()) for key in request.files
                  for upload in request.files.getlist(key)]
    elif request.is_json:
        body = request.get_json(silent=True)
        items = body.get("images") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise BadInput('send {"images": ["<base64>", ...]}, multipart files, or one image as the body', "images")
        images = []
        for i, item in enumerate(items):
            try:
                images.append((f"images[{i}]", base64.b64decode(item, validate=True)))
            except binascii.Error:
                raise BadInput(f"images[{i}]: not base64", f"images[{i}]") from None
    else:  # any other type (curl --data-binary says form-urlencoded) is the image's bytes
        images = [("image", request.get_data(parse_form_data=False))]
    if not images or not any(data for _, data in images):
        raise BadInput("no image in the request: send one as the body, several as multipart files, "
                       'or {"images": [base64, ...]}')
    if len(images) > MAX_IMAGES:
        raise BadInput(f"{len(images)} images in one request; at most {MAX_IMAGES}")
    return images


def create_app(state: State) -> Flask:
    """The replica's routes over ``state`` (filled by the loader thread)."""
    from cauchy.datasets.errors import DatasetError
    from cauchy.datasets.io import decode_image

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 256 * 2**20

    @app.get("/health")
    @app.get("/<path:prefix>/health")
    def health(prefix: str = "") -> ResponseReturnValue:
        return jsonify({"status": "ok", "ready": state.ready.is_set(), "deployment": state.name})

    @app.get("/ready")
    @app.get("/<path:prefix>/ready")
    def ready(prefix: str = "") -> ResponseReturnValue:
        if state.ready.is_set():
            return jsonify({"ready": True})
        return jsonify({"ready": False, "error": state.error}), 503

    @app.get("/metrics")
    @app.get("/<path:prefix>/metrics")
    def metrics(prefix: str = "") -> ResponseReturnValue:
        return jsonify({**state.metrics.snapshot(), "ready": state.ready.is_set()})

    @app.post("/predict")
    @app.post("/<path:prefix>/predict")
    def predict(prefix: str = "") -> ResponseReturnValue:
        started = time.monotonic()
        if not state.ready.is_set():
            return jsonify(error_body("not_ready", state.error or "the model is still loading")), 503
        draw = request.args.get("draw", "0") not in ("0", "", "false")
        try:
            images = request_images()
            decoded = []
            for name, data in images:
                try:
                    decoded.append((name, decode_image(data, name)))
                except DatasetError as exc:
                    raise BadInput(str(exc), name) from None
            futures = [state.batcher.submit(state.predictor.sample(image, name)) for name, image in decoded]
            answers = [state.predictor.answer(future.result(), name, image if draw else None)
                       for future, (name, image) in zip(futures, decoded)]
        except BadInput as exc:
            state.metrics.request(0, time.monotonic() - started, ok=False)
            return jsonify(error_body("bad_image", str(exc), exc.field)), 400
        state.metrics.request(len(answers), time.monotonic() - started, ok=True)
        if len(answers) == 1 and "drawn" in answers[0] and request.accept_mimetypes.best == "image/png":
            return Response(base64.b64decode(answers[0]["drawn"]), mimetype="image/png")
        return jsonify({"predictions": answers})

    return app


def load(state: State, args: argparse.Namespace) -> None:
    """Load the model (in a thread: the server answers health and readiness meanwhile)."""
    try:
        import torch

        from cauchy.inference import load_predictor
        from cauchy.manifest import find_entry

        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        entry = find_entry(args.weights_dir, args.weights)
        if entry is None:
            raise ValueError(f"no weights named {args.weights!r} on the weights host")
        predictor = load_predictor(entry, args.weights_dir, args.device, args.backend)
        state.predictor = predictor
        state.batcher = Batcher(predictor.predict, args.max_batch, args.max_wait_ms / 1000, state.metrics)
        state.ready.set()
        log.info("deployment %s: %s loaded on %s (%s backend), max batch %d, max wait %g ms", args.name,
                 args.weights, args.device, args.backend, args.max_batch, args.max_wait_ms)
    except Exception as exc:
        state.error = f"{type(exc).__name__}: {exc}"
        log.exception("deployment %s: loading %s failed", args.name, args.weights)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one replica of a Cauchy deployment")
    parser.add_argument("--name", required=True)
    parser.add_argument("--weights-dir", required=True)
    parser.add_argument("--weights", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=0,
                        help="request threads (decoding, pre-processing); 0: twice max-batch, at least 8, so a "
                             "full batch can wait while the next one gathers")
    parser.add_argument("--torch-threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from waitress import serve

    state = State(args.name)
    threading.Thread(target=load, args=(state, args), name="cauchy-model-load", daemon=True).start()
    threads = args.threads or max(8, 2 * args.max_batch)
    serve(create_app(state), host=args.host, port=args.port, threads=threads, ident="cauchy-model-server",
          channel_request_lookahead=1, max_request_body_size=256 * 2**20)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
