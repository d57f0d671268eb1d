"""FastAPI application: a page to stylize photos in the browser, and the HTTP API behind it.

``create_app(...)`` loads the models once; every request then only runs a network. Uploads are
bounded in bytes and pixels (413), non-images and corrupt images are refused (415, 422), work runs
in worker threads with a bounded queue (503 when full), and every error is a JSON object
``{"error": "..."}``.
"""


import asyncio
import importlib.resources
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from ..catalog import expand_model_refs, shipped_models
from ..errors import ArtstyleError
from ..image import open_image, resize_max
from ..stylize import Stylizer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 40_000_000
    max_output_side: int = 2048  # px; larger photos are scaled down to this
    workers: int = 1  # stylizations running at once
    queue: int = 8  # requests allowed to wait; more get 503


@dataclass(frozen=True)
class Entry:
    """One choice on the page: a movement of a loaded model."""

    id: str
    stylizer: Stylizer
    movement: str | None  # what to pass to the stylizer


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def load_entries(refs: Sequence[str | Path] | None, device: torch.device) -> list[Entry]:
    """Every movement of every model (shipped models when ``refs`` is empty), by unique id."""
    folders = expand_model_refs(refs) if refs else list(shipped_models(fast=False).values())
    if not folders:
        raise ArtstyleError("no models to serve: give --model (a folder written by 'artstyle train')")
    entries: list[Entry] = []
    for folder in folders:
        stylizer = Stylizer.from_pretrained(folder, device)
        if stylizer.conditional:
            entries += [Entry(f"{stylizer.name}/{m}", stylizer, m) for m in stylizer.movements]
        else:
            entries.append(Entry(stylizer.name, stylizer, None))
    ids = [e.id for e in entries]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ArtstyleError(f"two models are both called {duplicates[0]!r}; serve only one of them")
    return entries


def create_app(models: Sequence[str | Path] | None = None, device: torch.device | str = "cpu",
               limits: Limits = Limits()) -> Any:
    """The FastAPI application, with its models loaded (shipped ones when ``models`` is empty)."""
    try:
        from fastapi import FastAPI, File, Form, Request, UploadFile
        from fastapi.concurrency import run_in_threadpool
        from fastapi.responses import HTMLResponse, JSONResponse, Response
    except ImportError:
        raise ArtstyleError("the web page needs FastAPI: pip install 'artstyle[web]'") from None
    from .. import __version__
    from ..demo import sample_photo_path

    entries = {e.id: e for e in load_entries(models, torch.device(device))}
    sample = resize_max(open_image(sample_photo_path()), 256)
    thumbnails = {i: _encode(e.stylizer(sample, movement=e.movement), "jpeg") for i, e in entries.items()}
    page = importlib.resources.files("artstyle.web").joinpath("page.html").read_text()
    slots = asyncio.Semaphore(limits.workers)
    state = {"waiting": 0}

    app = FastAPI(title="artstyle", version=__version__,
                  description="Paint photos in the style of art movements.")

    @app.exception_handler(HTTPError)
    async def _http_error(request: Request, err: HTTPError) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> str:
        return page

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        """Liveness: the number of movements loaded and requests waiting."""
        return {"status": "ok", "movements": len(entries), "waiting": state["waiting"]}

    @app.get("/api/movements")
    async def movements() -> list[dict[str, Any]]:
        """The movements that can be asked for, with the model behind each."""
        out = []
        for e in entries.values():
            trained = e.stylizer.config.get("trained", {})
            out.append({
                "id": e.id,
                "movement": e.movement or e.stylizer.name,
                "model": e.stylizer.name,
                "joint": e.stylizer.conditional,
                "strength": True,
                "preserve_color": True,
                "thumbnail": f"/api/thumbnails/{e.id}.jpg",
                "paintings": {m: p.get("used") for m, p in trained.get("paintings", {}).items()},
                "steps": trained.get("steps"),
            })
        return out

    @app.get("/api/thumbnails/{entry_id:path}.jpg", include_in_schema=False)
    async def thumbnail(entry_id: str) -> Response:
        if entry_id not in thumbnails:
            raise HTTPError(404, f"unknown movement {entry_id!r}")
        return Response(thumbnails[entry_id], media_type="image/jpeg",
                        headers={"Cache-Control": "max-age=3600"})

    @app.post("/api/stylize", responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}})
    async def stylize(
        request: Request,
        image: UploadFile = File(..., description="the photo"),
        movement: str = Form(..., description="a movement id from /api/movements"),
        strength: float = Form(1.0, ge=0.0, le=1.0, description="how much of the style, 0..1"),
        preserve_color: bool = Form(False, description="keep the photo's colours"),
        format: str = Form("png", pattern="^(png|jpeg)$", description="png or jpeg"),
        max_size: int | None = Form(None, ge=16, description="bound on the output's longest side, px"),
    ) -> Response:
        """Stylize the uploaded photo with one movement; returns the image."""
        if movement not in entries:
            raise HTTPError(422, f"unknown movement {movement!r}; choose one of: {', '.join(entries)}")
        declared = int(request.headers.get("content-length") or 0)
        if declared > limits.max_upload_bytes + 64 * 1024:
            raise HTTPError(413, f"upload too large: at most {limits.max_upload_bytes // 2**20} MB")
        data = await image.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise HTTPError(413, f"upload too large: at most {limits.max_upload_bytes // 2**20} MB")
        if max_size is not None and max_size > limits.max_output_side:
            raise HTTPError(413, f"max_size {max_size} is over this server's limit of {limits.max_output_side} px")
        if state["waiting"] >= limits.queue:
            raise HTTPError(503, "the server is busy; try again in a moment")
        photo = _decode(data, limits.max_pixels)
        entry = entries[movement]
        side = min(max_size or limits.max_output_side, limits.max_output_side)
        state["waiting"] += 1
        try:
            await slots.acquire()
        finally:
            state["waiting"] -= 1
        try:
            result = await run_in_threadpool(entry.stylizer, photo, side, entry.movement, strength, preserve_color)
            body = await run_in_threadpool(_encode, result, format)
        finally:
            slots.release()
        return Response(body, media_type=f"image/{format}",
                        headers={"Content-Disposition": f'inline; filename="{entry.id.replace("/", "_")}.{format}"'})

    return app


def _decode(data: bytes, max_pixels: int) -> Image.Image:
    """The upload as an upright RGB image; 415 for non-images, 413 for too many pixels, 422 if corrupt."""
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except UnidentifiedImageError:
        raise HTTPError(415, "not an image: upload a JPEG, PNG, WebP, TIFF, BMP or GIF photo") from None
    except Exception as err:
        raise HTTPError(422, f"unreadable image ({err})") from None
    if width * height > max_pixels:
        raise HTTPError(413, f"{width}x{height} is over the {max_pixels // 1_000_000} megapixel limit")
    try:
        return open_image(io.BytesIO(data), max_pixels=max_pixels)
    except ArtstyleError as err:
        raise HTTPError(422, str(err)) from None


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=92)
    else:
        image.save(buffer, format="PNG")
    return buffer.getvalue()
