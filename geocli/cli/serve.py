"""``geocli serve``: a local web viewer and JSON API over one loaded model."""
from __future__ import annotations

import ipaddress
import socket

import click

LOOPBACK_NAMES = {"localhost", "ip6-localhost", "ip6-loopback"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (127.0.0.0/8, ::1, localhost)."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_can_listen(host: str, port: int) -> None:
    """Fail in one line, before the model loads, when the address is taken or not this machine's."""
    from geocli.errors import UsageError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(infos[0][4])
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _check_tiles(tiles: str | None) -> str | None:
    if tiles is None:
        return None
    if not tiles.startswith(("http://", "https://")) or not all(k in tiles for k in ("{z}", "{x}", "{y}")):
        raise click.BadParameter("a URL template such as https://tile.example.org/{z}/{x}/{y}.png",
                                 param_hint="--tiles")
    return tiles


@click.command()
@click.option("--model", "-m", default=None,
              help="Checkpoint folder from 'geocli train', or a name from 'geocli models' (default: 'default').")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines upload photos (a warning says so).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--top", "top_k", type=click.IntRange(1, 20), default=5, show_default=True, help="Guesses per photo.")
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True,
              help="Photos predicted together (uploads from concurrent requests share a batch).")
@click.option("--max-files", type=click.IntRange(1, 1000), default=32, show_default=True, help="Photos per request.")
@click.option("--max-mb", type=click.FloatRange(0.01, 1024), default=25.0, show_default=True,
              help="Largest photo accepted, in MB.")
@click.option("--no-ocr", is_flag=True, help="Do not read text in the photos.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available).")
@click.option("--tiles", default=None, metavar="URL",
              help="Draw map tiles from this server (https://host/{z}/{x}/{y}.png); default: borders only, offline.")
def serve(model, host, port, top_k, batch_size, max_files, max_mb, no_ocr, device, tiles):
    """A local web page where you drop photos and see, per photo, the photo with the text boxes read,
    the guesses on a map, the country ranking and the evidence; plus a JSON API:

    \b
      POST /api/predict   multipart field 'files' (one or more photos) -> array of records
                          (the records of 'geocli predict --format json'); ?top=N
      GET  /api/models    the loaded model, its notices and the upload limits

    Everything the page needs is served by geocli itself; nothing leaves the machine unless you
    name a tile server (--tiles). Listens on 127.0.0.1 (this machine only) unless told otherwise.

    \b
    Examples:
      geocli serve --model evidence
      curl -F files=@photo.jpg http://127.0.0.1:8000/api/predict
    """
    import uvicorn

    from geocli import load_model
    from geocli.report.console import log
    from geocli.serve.app import Limits, ServeSettings, create_app

    tiles = _check_tiles(tiles)
    check_can_listen(host, port)
    if not is_loopback(host):
        log(f"warning: listening on {host}: anyone who can reach this machine can upload photos and read "
            "the results; use --host 127.0.0.1 to keep it local")
    options = {"no_ocr": True} if no_ocr else {}
    if device:
        options["device"] = device
    predictor = load_model(model, **options)
    for line in predictor.status_lines():
        log(line)
    settings = ServeSettings(model_name=model or "default", top_k=top_k, tiles=tiles,
                             limits=Limits(max_files=max_files, max_file_bytes=int(max_mb * 1024 * 1024)))
    app = create_app(predictor, settings, batch_size=batch_size)
    shown = f"[{host}]" if ":" in host else host
    log(f"serving model {settings.model_name} at http://{shown}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
