import re
from pathlib import Path

from aiohttp import web

from services.gateway import buttons, openapi, views
from services.gateway.catalog import ROUTES
from services.gateway.keys import HUB
from shared import metrics
from shared.buttons import BUTTONS, READS
from shared.contracts.declare import Button

STATIC = Path(__file__).parent / "static"
# The npm package's own files (crm-buttons), served as they are: a page imports /sdk/index.js from the gateway.
SDK = Path(__file__).resolve().parents[2] / "clients" / "js" / "src"
SDK_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".ts": "application/typescript; charset=utf-8",  # the declarations (*.d.ts)
    ".json": "application/json",
    ".map": "application/json",
    ".css": "text/css; charset=utf-8",
}


async def websocket(request: web.Request) -> web.WebSocketResponse:
    return await request.app[HUB].handle(request)


async def console(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def service_worker(request: web.Request) -> web.FileResponse:
    """At the root, so that its scope is the whole console (it keeps the page's files for offline use)."""
    return web.FileResponse(STATIC / "sw.js", headers={"Content-Type": "text/javascript", "Cache-Control": "no-cache"})


async def sdk(request: web.Request) -> web.FileResponse:
    """A file of the SDK, revalidated on each use (no-cache; ETag and Last-Modified: 304). Only files of the
    types above, inside the folder (no dot-file, no way out through `..` or a link): else 404, a folder too."""
    name = request.match_info["name"]
    parts = name.split("/")
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        raise web.HTTPNotFound()
    root = SDK.resolve()
    path = (root / name).resolve()
    content_type = next((t for suffix, t in SDK_TYPES.items() if path.name.endswith(suffix)), None)
    try:
        inside = path.is_relative_to(root) and path.is_file()
    except OSError:  # a name too long for the file system...
        inside = False
    if content_type is None or not inside:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": content_type, "Cache-Control": "no-cache"})


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", views.healthz)
    app.router.add_get("/readyz", views.readyz)
    app.router.add_get("/metrics", metrics.serve)
    app.router.add_get("/api/openapi.json", openapi.serve)
    for path, rows in by_path(BUTTONS).items():
        app.router.add_post(path, buttons.press(rows))
    literal = [*(b.path for b in BUTTONS), *(r.path for r in ROUTES)]
    for row in READS:
        app.router.add_get(not_a_sibling(row.path, literal), buttons.read(row))
    for route in ROUTES:  # the statuses, a document's bytes, a command's answer, the webhooks, the dev sign-in...
        if route.method == "GET":
            app.router.add_get(route.path, route.view)  # and HEAD
        else:
            app.router.add_route(route.method, route.path, route.view)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/", console)
    app.router.add_get("/sw.js", service_worker)
    app.router.add_static("/static", STATIC)
    app.router.add_get("/sdk/{name:.+}", sdk)  # public: `authenticate` guards /api/ only


def by_path(rows: tuple[Button, ...]) -> dict[str, list[Button]]:
    grouped: dict[str, list[Button]] = {}
    for row in rows:
        grouped.setdefault(row.path, []).append(row)
    return grouped


def not_a_sibling(path: str, literal: list[str]) -> str:
    """`/api/leads/{leadId}` that never matches `/api/leads/update-status` (a button's own path): a GET
    there is a 405 with its Allow, not a read of the lead "update-status". A segment otherwise matches what
    aiohttp's own `{name}` matches (no brace), as the buttons' paths on the same segments do: the same id is
    routed alike by a read and a press (else a POST the read's pattern takes would be a 405)."""
    parts = path.split("/")
    for i, part in enumerate(parts):
        if part.startswith("{"):
            taken = sorted(
                {
                    other.split("/")[i]
                    for other in literal
                    if other.split("/")[:i] == parts[:i]
                    and len(other.split("/")) > i
                    and not other.split("/")[i].startswith("{")
                }
            )
            if taken:
                parts[i] = f"{{{part[1:-1]}:(?!{'|'.join(re.escape(t) + '$' for t in taken)})[^{{}}/]+}}"
    return "/".join(parts)
