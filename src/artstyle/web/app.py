"""FastAPI application: a page to stylize photos in the browser, and the HTTP API behind it.

``create_app(...)`` loads the models once; every request then only runs a network. Request bodies
are bounded while they stream in (413, :mod:`artstyle.web.guards`), photos are bounded in pixels
(413, from their header, before any decoding), non-images and corrupt or unpaintable images are
refused (415, 422), and decoding, painting and encoding run in worker threads behind a bounded
queue (503 with ``Retry-After`` when full), so the event loop keeps answering. Every error is a
JSON object ``{"error": "..."}`` whose message says what to change. ``/docs`` serves Swagger UI
from the package, so it works offline.
"""

import asyncio
import functools
import importlib.resources
import io
import logging
import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError

from ..engines import Stylizer, load
from ..errors import ArtstyleError
from ..image import encode_image, open_image, resize_max
from ..model_folder import ModelFolder, resolve_models, shipped_models
from ..runtime import release_free_memory
from .guards import BodyLimit, Gate, Refusal

log = logging.getLogger(__name__)

FORM_ALLOWANCE = 64 * 1024  # bytes a request may carry beyond the photo: form fields and multipart framing
STATIC = "/static"  # where the files under artstyle/web/static are served
ERROR_STATUSES = {400: "malformed form data", 413: "too large: the upload, the photo's pixels or max_size",
                  415: "not an image", 422: "a field is missing or invalid, or the image cannot be painted",
                  503: "busy: the queue is full; retry after the Retry-After header's seconds"}


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_upload_bytes: int = 20 * 1024 * 1024  # the photo's file; the whole request may be FORM_ALLOWANCE more
    max_pixels: int = 40_000_000
    max_output_side: int = 2048  # px; larger photos are scaled down to this
    workers: int = 1  # stylizations running at once
    # requests allowed to wait; more get 503. A 503's Retry-After is a whole second at least, so the
    # queue should hold more than a second of painting, or it drains while the refused wait
    queue: int = 16


@dataclass(frozen=True)
class Entry:
    """One choice on the page: a movement of a loaded model."""

    id: str
    stylizer: Stylizer
    movement: str | None  # what to pass to the stylizer


class HTTPError(Exception):
    """An error answered as ``{"error": message}`` with ``status`` (and ``headers``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def load_entries(refs: Sequence[str | Path] | None, device: Any = "auto", engine: str = "auto") -> list[Entry]:
    """Every movement of every model (shipped models when ``refs`` is empty), by unique id."""
    models = resolve_models(refs) if refs else [ModelFolder.read(p) for p in shipped_models(fast=False).values()]
    if not models:
        raise ArtstyleError("no models to serve: give --model (a folder written by 'artstyle train')")
    entries: list[Entry] = []
    for model in models:
        stylizer = load(model, engine=engine, device=device)
        if stylizer.conditional:
            entries += [Entry(f"{stylizer.name}/{m}", stylizer, m) for m in stylizer.movements]
        else:
            entries.append(Entry(stylizer.name, stylizer, None))
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ArtstyleError(f"two models are both called {duplicates[0]!r}; serve only one of them")
    return entries


def create_app(models: Sequence[str | Path] | None = None, device: Any = "auto",
               limits: Limits = Limits(), engine: str = "auto") -> Any:
    """The FastAPI application, with its models loaded.

    Args:
        models: model references (shipped names, model folders, run folders); empty or None: the
            shipped models without their ``-fast`` variants.
        device: where the networks run (``auto``: a GPU if there is one, else the CPU).
        limits: what one request may ask (bytes, pixels, output size) and how many run and wait.
        engine: what runs the networks, as :func:`artstyle.engines.load` takes it.
    """
    try:
        from fastapi import FastAPI, File, Form, Request, UploadFile
        from fastapi.concurrency import run_in_threadpool
        from fastapi.exceptions import RequestValidationError
        from fastapi.openapi.docs import get_swagger_ui_html
        from fastapi.responses import HTMLResponse, JSONResponse, Response
        from fastapi.staticfiles import StaticFiles
        from pydantic import BaseModel
        from starlette.exceptions import HTTPException
    except ImportError:
        raise ArtstyleError("the web page needs FastAPI: pip install 'artstyle[web]'") from None
    from .. import __version__
    from ..demo import sample_photo_path

    class ErrorBody(BaseModel):
        error: str  # one line: what is wrong and what to do

    entries = {e.id: e for e in load_entries(models, device, engine)}
    sample = resize_max(open_image(sample_photo_path()), 256)
    started = time.perf_counter()
    thumbnails = {i: encode_image(e.stylizer(sample, movement=e.movement), "jpeg") for i, e in entries.items()}
    page = importlib.resources.files("artstyle.web").joinpath("page.html").read_text()
    slots = asyncio.Semaphore(limits.workers)
    # Painting runs on threads of its own, not in the shared pool of 40: the same few threads keep one
    # OpenMP team and malloc arena each, where the pool's threads would each grow a team and an arena.
    painters = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="artstyle-paint")
    state = {"waiting": 0, "seconds": (time.perf_counter() - started) / len(entries)}  # seconds: recent paint time
    too_large = f"upload too large: at most {_bytes_text(limits.max_upload_bytes)}"

    app = FastAPI(title="artstyle", version=__version__, docs_url=None, redoc_url=None,
                  description="Paint photos in the style of art movements. Every error is "
                              '`{"error": "..."}` with a 4xx status (503 when busy).')

    def busy() -> Refusal | None:
        """503 while ``limits.queue`` requests wait; retry when one may have been painted."""
        if state["waiting"] < limits.queue:
            return None
        retry = max(1, math.ceil(state["seconds"] / limits.workers))
        return 503, f"the server is busy; try again in {retry} s", {"Retry-After": str(retry)}

    # the last added runs first: too large is 413 even when busy; busy is 503 before any upload is read
    app.add_middleware(Gate, method="POST", path="/api/stylize", refuse=busy)
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes + FORM_ALLOWANCE, message=too_large)
    app.mount(STATIC, StaticFiles(packages=[("artstyle.web", "static")]), name="static")

    @app.exception_handler(HTTPError)
    async def _own_error(request: Request, err: HTTPError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status, headers=err.headers)

    @app.exception_handler(HTTPException)
    async def _routing_error(request: Request, err: HTTPException) -> JSONResponse:
        if err.status_code == 404:
            message = f"no such page: {request.url.path}; the API is described at /docs"
        elif err.status_code == 405:
            allowed = (err.headers or {}).get("Allow", "another method")
            message = f"{request.method} is not allowed on {request.url.path}; use {allowed}"
        elif err.status_code == 400:
            message = f"malformed form data ({err.detail}); send multipart/form-data with the fields in /docs"
        else:
            message = str(err.detail)
        return JSONResponse({"error": message}, status_code=err.status_code, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_message(err.errors())}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, err: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal error; the server's log has the details"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="artstyle API",
                                   swagger_js_url=f"{STATIC}/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url=f"{STATIC}/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url=f"{STATIC}/swagger-ui/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no badge from swagger.io

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        """Liveness: the number of movements loaded and requests waiting."""
        return {"status": "ok", "movements": len(entries), "waiting": state["waiting"]}

    @app.get("/api/movements")
    async def movements() -> list[dict[str, Any]]:
        """The movements that can be asked for, with the model behind each."""
        out = []
        for e in entries.values():
            trained = e.stylizer.model.trained
            out.append({
                "id": e.id,
                "movement": e.movement or e.stylizer.name,
                "model": e.stylizer.name,
                "joint": e.stylizer.conditional,
                "strength": True,
                "preserve_color": True,
                "thumbnail": f"/api/thumbnails/{e.id}.jpg",
                "paintings": {m: p.used for m, p in trained.paintings.items()} if trained else {},
                "steps": trained.steps if trained else None,
            })
        return out

    @app.get("/api/thumbnails/{entry_id:path}.jpg", include_in_schema=False)
    async def thumbnail(entry_id: str) -> Response:
        if entry_id not in thumbnails:
            raise HTTPError(404, f"unknown movement {entry_id!r}")
        return Response(thumbnails[entry_id], media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    errors: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody, "description": text}
                                               for code, text in ERROR_STATUSES.items()}

    @app.post("/api/stylize", responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}, **errors})
    async def stylize(
        image: UploadFile = File(..., description="the photo"),
        movement: str = Form(..., description="a movement id from /api/movements",
                             json_schema_extra={"enum": list(entries)}),  # checked below, to say what to choose
        strength: float = Form(1.0, ge=0.0, le=1.0, allow_inf_nan=False, description="how much of the style, 0..1"),
        preserve_color: bool = Form(False, description="keep the photo's colours"),
        format: Literal["png", "jpeg"] = Form("png", description="png or jpeg"),
        max_size: int = Form(limits.max_output_side, ge=16, json_schema_extra={"maximum": limits.max_output_side},
                             description="bound on the output's longest side, px"),  # over the maximum: 413
    ) -> Response:
        """Stylize the uploaded photo with one movement; returns the image."""
        if movement not in entries:
            raise HTTPError(422, f"unknown movement {movement[:40]!r}; choose one of: {', '.join(entries)}")
        if max_size > limits.max_output_side:
            raise HTTPError(413, f"max_size {max_size} is over this server's limit of {limits.max_output_side} px")
        data = await image.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise HTTPError(413, too_large)
        await run_in_threadpool(_probe, data, limits.max_pixels)
        if (refusal := busy()) is not None:  # the queue filled while this upload came in
            raise HTTPError(*refusal)
        entry = entries[movement]
        state["waiting"] += 1
        try:
            await slots.acquire()
        finally:
            state["waiting"] -= 1
        try:
            began = time.perf_counter()
            paint = functools.partial(_paint, data, limits.max_pixels, entry, max_size, strength, preserve_color)
            result = await asyncio.get_running_loop().run_in_executor(painters, paint)
            state["seconds"] = 0.8 * state["seconds"] + 0.2 * (time.perf_counter() - began)
        finally:
            slots.release()
            if state["waiting"] == 0 and not slots.locked():  # idle: hand the free heap back, glibc keeps it
                painters.submit(release_free_memory)
        body = await run_in_threadpool(encode_image, result, format)  # out of the slot: the next one paints meanwhile
        return Response(body, media_type=f"image/{format}",
                        headers={"Content-Disposition": f'inline; filename="{entry.id.replace("/", "_")}.{format}"'})

    return app


def validation_message(errors: Sequence[Any]) -> str:
    """FastAPI's validation errors as one line naming each field: ``strength: input should be ... (got '2')``."""
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header"))
        message = str(error.get("msg", "invalid")).replace("\n", " ")
        message = message[:1].lower() + message[1:]
        value = error.get("input")
        got = f" (got {value[:40]!r})" if isinstance(value, str) and error.get("type") != "missing" else ""
        parts.append(f"{field or 'request'}: {message}{got}")
    return "; ".join(parts) or "invalid request; see /docs for the fields"


def _probe(data: bytes, max_pixels: int) -> tuple[int, int]:
    """The upload's (width, height) from its header alone: 415 for non-images, 413 for too many
    pixels (decompression bombs included), 422 for headers that cannot be read."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError:  # over Pillow's own limit, which is far over ours
        raise HTTPError(413, f"the image is over the {max_pixels / 1e6:g} megapixel limit (Pillow refuses it as a "
                             "likely decompression bomb); downscale it") from None
    except UnidentifiedImageError:
        raise HTTPError(415, "not an image: upload a JPEG, PNG, WebP, TIFF, BMP or GIF photo") from None
    except Exception as err:  # a hostile header can raise anything from a decoder plugin
        raise HTTPError(422, f"unreadable image ({err})") from None
    if width * height > max_pixels:
        raise HTTPError(413, f"{width}x{height} is over the {max_pixels / 1e6:g} megapixel limit; downscale it")
    return width, height


def _paint(data: bytes, max_pixels: int, entry: Entry, side: int, strength: float, preserve_color: bool
           ) -> Image.Image:
    """Decode and paint one upload (on a painting thread); 422 for images that cannot be painted."""
    try:
        photo = open_image(io.BytesIO(data), max_pixels=max_pixels)
    except ArtstyleError as err:
        raise HTTPError(422, str(err)) from None
    except Exception as err:  # decoders raise more than OSError on hostile files
        raise HTTPError(422, f"the upload: unreadable image ({err})") from None
    try:
        result = entry.stylizer(photo, side, entry.movement, strength, preserve_color)
    except ArtstyleError as err:
        raise HTTPError(422, str(err)) from None
    return result


def _bytes_text(n: int) -> str:
    """``n`` bytes for people: ``20 MB``, ``195 KB``."""
    return f"{n / 2**20:.3g} MB" if n >= 2**20 else f"{n / 1024:.3g} KB"
