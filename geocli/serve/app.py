"""The ``geocli serve`` web app (FastAPI): the viewer page, its own scripts and styles, and a JSON API.

Routes: ``GET /`` (the page), ``GET /static/{name}`` (a fixed set of files geocli ships, looked up
by name in a table: no route turns a request path into a file path), ``GET /api/borders`` (the
shipped basemap), ``GET /api/models``, ``POST /api/predict`` (multipart field ``files``: one or more
photos; returns the array of records ``geocli predict --format json`` prints, in upload order).

Status codes of ``/api/predict``: 200 every photo was read; 422 some upload is not a readable image
(its record says why; the others are predicted all the same); 413 a photo over the size limit (an
error record too) or more photos than allowed; 400 no ``files`` field. The server keeps serving.
"""
from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath, PureWindowsPath

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile

from geocli.predict.predictor import BUILTIN_MODELS
from geocli.predict.record import error_record
from geocli.report.basemap import borders_text, web_asset
from geocli.serve.batcher import BatchingPredictor

#: Files the page loads, by the name it asks for: (package folder, file, media type).
STATIC = {
    "geomap.js": ("report/web", "geomap.js", "text/javascript"),
    "geomap.css": ("report/web", "geomap.css", "text/css"),
    "app.js": ("serve/web", "app.js", "text/javascript"),
    "app.css": ("serve/web", "app.css", "text/css"),
}


@dataclass(frozen=True)
class Limits:
    max_files: int = 32  # photos per request
    max_file_bytes: int = 25 * 1024 * 1024
    max_top_k: int = 20


@dataclass(frozen=True)
class ServeSettings:
    model_name: str
    top_k: int = 5
    tiles: str | None = None  # a tile URL template the user named; None: borders only
    limits: Limits = Limits()


def _shipped(folder: str, name: str) -> str:
    if folder == "report/web":
        return web_asset(name)
    return (resources.files("geocli") / folder / name).read_text(encoding="utf-8")


def upload_name(filename: str | None, index: int) -> str:
    """The name an upload's record carries: the client's base name, printable, at most 200 characters."""
    base = PureWindowsPath(PurePosixPath(filename or "").name).name
    clean = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return clean[:200] or f"upload-{index + 1}"


def _csp(tiles: str | None) -> str:
    origin = ""
    if tiles and "//" in tiles:
        scheme, rest = tiles.split("//", 1)
        origin = " " + scheme + "//" + rest.split("/", 1)[0].replace("{s}", "*")
    return (f"default-src 'self'; img-src 'self' blob: data:{origin}; script-src 'self'; style-src 'self'; "
            "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")


def create_app(predictor, settings: ServeSettings, batch_size: int = 8) -> FastAPI:
    """The app around one loaded ``predictor``; uploads from concurrent requests share its batches."""
    app = FastAPI(title="geocli", docs_url=None, redoc_url=None, openapi_url=None)
    batcher = BatchingPredictor(predictor, batch_size=batch_size)
    app.state.batcher = batcher
    app.router.add_event_handler("shutdown", batcher.close)
    headers = {"Content-Security-Policy": _csp(settings.tiles), "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        return HTMLResponse(_shipped("serve/web", "index.html"), headers=headers)

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC:
            return JSONResponse({"error": "not found"}, status_code=404)
        folder, file, media = STATIC[name]
        return Response(_shipped(folder, file), media_type=media, headers=headers)

    @app.get("/api/borders")
    def basemap() -> Response:
        return Response(borders_text(), media_type="application/json")

    @app.get("/api/models")
    def models() -> dict:
        return _models(predictor, settings)

    @app.post("/api/predict")
    async def predict(request: Request) -> JSONResponse:
        return await _predict(request, batcher, settings)

    return app


def _models(predictor, settings: ServeSettings) -> dict:
    builtins = [{"name": n, "what": w, "loaded": n == settings.model_name} for n, w in BUILTIN_MODELS.items()]
    if settings.model_name not in BUILTIN_MODELS:
        builtins.append({"name": settings.model_name, "what": "checkpoint folder", "loaded": True})
    limits = settings.limits
    return {"model": settings.model_name, "models": builtins, "status": predictor.status_lines(),
            "top_k": settings.top_k, "tiles": settings.tiles,
            "limits": {"max_files": limits.max_files, "max_file_bytes": limits.max_file_bytes}}


def _mb(n_bytes: int) -> str:
    return f"{n_bytes / (1024 * 1024):.3g} MB"


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _predict(request: Request, batcher: BatchingPredictor, settings: ServeSettings) -> JSONResponse:
    limits = settings.limits
    try:
        top_k = int(request.query_params.get("top", settings.top_k))
    except ValueError:
        return _error("top must be a whole number", 400)
    if not 1 <= top_k <= limits.max_top_k:
        return _error(f"top must be between 1 and {limits.max_top_k}", 400)
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limits.max_files * limits.max_file_bytes + 1024 * 1024:
        return _error(f"request too large (limit {limits.max_files} photos of {_mb(limits.max_file_bytes)})", 413)
    try:
        form = await request.form(max_files=limits.max_files, max_fields=limits.max_files + 8)
    except Exception as exc:  # multipart errors: too many parts, a malformed body
        status = 413 if "Too many" in str(exc) else 400
        return _error(f"cannot read the upload: {str(exc)[:200]} (limit {limits.max_files} photos)", status)
    uploads = [u for u in form.getlist("files") if isinstance(u, UploadFile)]
    if not uploads:
        return _error("no photos: send them as multipart form field 'files'", 400)
    return await _predict_uploads(uploads, batcher, top_k, limits.max_file_bytes)


async def _predict_uploads(uploads: list[UploadFile], batcher, top_k: int, max_bytes: int) -> JSONResponse:
    records: list[dict | None] = [None] * len(uploads)
    queued: list[tuple[int, str, bytes]] = []
    too_large = False
    for i, upload in enumerate(uploads):
        name = upload_name(upload.filename, i)
        data = await upload.read(max_bytes + 1)
        await upload.close()
        if len(data) > max_bytes:
            too_large = True
            records[i] = error_record(name, f"file too large (over {_mb(max_bytes)})")
        else:
            queued.append((i, name, data))
    futures = batcher.submit([(name, data) for _, name, data in queued], top_k)
    try:
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
    except Exception as exc:
        return _error(f"prediction failed: {type(exc).__name__}: {str(exc)[:200]}", 500)
    for (i, _, _), record in zip(queued, results):
        records[i] = record
    status = 413 if too_large else 422 if any(not r["ok"] for r in records) else 200
    return JSONResponse(records, status_code=status)
