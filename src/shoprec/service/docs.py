"""`/redoc` with nothing from outside the service: ReDoc's script from the Python environment
(fastapi-offline's files, as `/docs` serves Swagger UI's), and a Content-Security-Policy that
keeps the page on the service. ReDoc's bundle fetches its maker's logo from cdn.redoc.ly for the
menu's footer; the policy stops that request in the browser, before it leaves."""

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

STATIC_URL = "/static-offline-docs"  # where fastapi_offline.FastAPIOffline mounts its files
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self' 'unsafe-inline'; worker-src 'self' blob:"
)


def add_redoc(app: FastAPI, path: str = "/redoc") -> None:
    """Serve ReDoc at `path` on an app made by `FastAPIOffline(redoc_url=None)`."""

    @app.get(path, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{app.openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page
