"""A small local web server (standard library only) around a :class:`weakloc.predict.detector.Detector`.

GET  /              the page (page.html)
GET  /api/info      the checkpoint's model card
POST /api/predict   body = the image file's bytes -> JSON: score, verdict (fake / real, the value it thresholds
                    and its rule: the card's calibrated threshold and where it came from), size, map (grayscale
                    PNG, base64, at the image's resolution), overlay (PNG, base64), notes; errors -> {"error": ...}
                    with 400/413
The pixel threshold is applied in the page itself, on the map, so moving the slider needs no round trip; it moves
the verdict too only for a checkpoint without a calibrated one (score > threshold, as before calibration existed).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from PIL import Image

from ..predict.detector import Detector
from ..data.images import decode_rgb
from ..errors import ImageTooLargeError, InputError
from ..predict.render import heatmap_png, overlay_png

MAX_UPLOAD = 25 * 2**20


def _png_b64(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def predict_bytes(detector: Detector, data: bytes, threshold: float = 0.5, scale: str | None = None) -> dict:
    """The JSON answer for one uploaded image (``scale``: resize | native for this image; the detector's own
    otherwise)."""
    notes: list[str] = []
    image = decode_rgb(data, "upload", notes, detector.max_pixels)  # size checked before decoding; EXIF applied
    result = detector.predict(image, threshold=threshold, scale=scale)
    result.notes[:0] = notes
    return {"score": result.score, "threshold": threshold, "width": image.width, "height": image.height,
            "verdict": result.verdict, "is_fake": result.is_fake, "verdict_value": result.verdict_value,
            "verdict_rule": result.verdict_rule.to_dict(),
            "model": detector.name, "notes": result.notes, "scale": scale or detector.scale,
            "map": _png_b64(heatmap_png(result.map)),
            "overlay": base64.b64encode(overlay_png(image, result.map, result.score, threshold, detector.name,
                                                    verdict=result.verdict)).decode()}


def _query(path: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(path).query).items()}


def _handler(detector: Detector, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    page = (resources.files("weakloc.serve") / "page.html").read_text(encoding="utf-8")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep the terminal quiet
            pass

        def _send(self, code: int, body: bytes, kind: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def _json(self, code: int, data: dict) -> None:
            self._send(code, json.dumps(data).encode(), "application/json")

        def do_GET(self) -> None:
            if self.path in ("/", "/index.html"):
                self._send(200, page.encode(), "text/html; charset=utf-8")
            elif self.path == "/api/info":
                self._json(200, detector.card)
            else:
                self._json(404, {"error": f"no such page: {self.path}"})

        def do_POST(self) -> None:
            if self.path.split("?")[0] != "/api/predict":
                self._json(404, {"error": f"no such endpoint: {self.path}"})
                return
            length = int(self.headers.get("Content-Length", 0))
            if length <= 0:
                self._json(400, {"error": "empty upload: send the image file's bytes"})
                return
            if length > MAX_UPLOAD:
                self._json(413, {"error": f"image larger than {MAX_UPLOAD // 2**20} MB"})
                return
            data = self.rfile.read(length)
            try:
                with lock:  # one model, one prediction at a time
                    answer = predict_bytes(detector, data, scale=_query(self.path).get("scale"))
            except ImageTooLargeError as exc:  # a bomb or a huge image: refused before decoding
                self._json(413, {"error": str(exc)})
                return
            except InputError as exc:
                self._json(400, {"error": str(exc)})
                return
            self._json(200, answer)

    return Handler


def make_server(detector: Detector, host: str = "127.0.0.1", port: int = 8765) -> ThreadingHTTPServer:
    """A server bound to ``host:port`` (port 0 = any free port); call ``serve_forever`` to run it."""
    return ThreadingHTTPServer((host, port), _handler(detector, threading.Lock()))


def serve(detector: Detector, host: str = "127.0.0.1", port: int = 8765) -> None:
    server = make_server(detector, host, port)
    print(f"weakloc: serving {detector.name} on http://{host}:{server.server_port}/  (Ctrl+C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
