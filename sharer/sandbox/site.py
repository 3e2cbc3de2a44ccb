"""A stand-in for the newsroom website: serves the example pages and any image path.

The example articles live on news.example.com, which this machine cannot reach; the default config's
``[media] rewrite`` sends image downloads here, so WeChat covers and Weibo pictures work in the demo.
"""

from __future__ import annotations

from pathlib import Path

from .images import image_for
from .server import Emulator, Request, Response, route

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class SiteEmulator(Emulator):
    platform = "site"

    @route("GET", r"/(?P<path>.*\.(?:jpg|jpeg|png|gif))")
    def image(self, req: Request) -> Response:
        data, ctype = image_for(req.path)
        return Response(200, data, {"Content-Type": ctype, "Cache-Control": "max-age=3600"})

    @route("GET", r"/en/2023/03/13/baic-catl-cooperation")
    def page(self, req: Request) -> Response:
        page = EXAMPLES / "baic-catl-page.html"
        return Response(200, page.read_bytes(), {"Content-Type": "text/html; charset=utf-8"})
