"""Attachments: the server's memory while a 20 MB file goes up and comes back, and the cost of
verifying a large photo.

- attachment_upload_rss_growth_20mb: a real server's RSS growth (MB) across one 20 MB upload,
  after a small upload and download have warmed it up (imports, pools). The body goes to a
  temporary file in Twisted, is handed over as that file (vero.body_limits), is hashed while it
  is copied to another, and is stored: it is never held in memory.
- attachment_download_rss_growth_20mb: the same across downloading it (FileResponse, in chunks).
- attachment_verify_12mp_jpeg: `chats.files.file_check` on a 4000x3000 JPEG (median of runs):
  Pillow's verify plus a decode at 1/8 scale, which still reads every byte of the scan.

The 20 MB file is a WAV (its check reads the header only), so the figures are the I/O path's.
Targets (issue 15): <= 5 MB each, <= 100 ms.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import io
import statistics
import struct
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _harness import Setup, bench_main, comment, figure
from _server import Server

MB = 1024 * 1024


def _wav(size: int, seed: int) -> bytes:
    data = bytes([seed % 256]) * (size - 44)
    header = b"RIFF" + struct.pack("<I", size - 8) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
    header += b"data" + struct.pack("<I", len(data))
    return header + data


class _Visitor:
    def __init__(self, server: Server) -> None:
        self.server = server
        self.cookies = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))
        opener.open(f"{server.base}/", timeout=30).read()

    def _cookie_header(self) -> str:
        return "; ".join(f"{cookie.name}={cookie.value}" for cookie in self.cookies)

    def upload(self, data: bytes, name: str) -> str:
        csrf = next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        conn.request(
            "POST", "/attachments", body=io.BytesIO(data),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
                     "X-Filename": name, "X-CSRFToken": str(csrf),
                     "Cookie": self._cookie_header()},
        )  # fmt: skip
        response = conn.getresponse()
        body = response.read()
        conn.close()
        if response.status not in (200, 201):
            raise RuntimeError(f"upload answered {response.status}: {body[:200]!r}")
        import json

        return str(json.loads(body)["url"])

    def download(self, url: str) -> int:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=60)
        conn.request("GET", url, headers={"Cookie": self._cookie_header()})
        response = conn.getresponse()
        size = 0
        while chunk := response.read(256 * 1024):
            size += len(chunk)
        conn.close()
        return size


def _settled_rss(server: Server) -> float:
    time.sleep(0.5)
    return server.rss_mb()


def _io_figures(setup: Setup, media: Path) -> None:
    server = setup.servers.start(env={"LLM_PRELOAD": "false", "MEDIA_ROOT": str(media)})
    server.wait()
    visitor = _Visitor(server)
    for seed in range(3):  # warm-up: imports, pools, the first allocations of each path
        visitor.download(visitor.upload(_wav(2 * MB, seed), f"warm{seed}.wav"))
    big = _wav(20 * MB, 7)

    before = _settled_rss(server)
    url = visitor.upload(big, "big.wav")
    after_upload = _settled_rss(server)
    downloaded = visitor.download(url)
    after_download = _settled_rss(server)
    assert downloaded == len(big), (downloaded, len(big))

    comment(
        f"server RSS {before:.1f} MB -> {after_upload:.1f} MB (upload) -> "
        f"{after_download:.1f} MB (download)"
    )
    figure("attachment_upload_rss_growth_20mb", after_upload - before, "MB", digits=1)
    figure("attachment_download_rss_growth_20mb", after_download - after_upload, "MB", digits=1)


def _verify_figure(folder: Path) -> None:
    import django

    django.setup()
    from PIL import Image

    from chats.files import JPEG, file_check

    path = folder / "photo.jpg"
    small = Image.effect_noise((500, 375), 40).convert("RGB")
    small.resize((4000, 3000), Image.Resampling.BICUBIC).save(path, "JPEG", quality=88)
    runs = []
    for _ in range(7):
        began = time.perf_counter()
        facts = file_check(path=path, file_type=JPEG)
        runs.append(time.perf_counter() - began)
    assert (facts.width, facts.height) == (4000, 3000)
    comment(f"12 MP JPEG of {path.stat().st_size / MB:.1f} MB")
    figure("attachment_verify_12mp_jpeg", statistics.median(runs) * 1000, "ms", digits=1)


def _run(setup: Setup) -> None:
    with tempfile.TemporaryDirectory(prefix="vero-bench-attachments-") as folder:
        _io_figures(setup, Path(folder) / "media")
        _verify_figure(Path(folder))


def main() -> int:
    return bench_main(_run, prefix="vero_bench_attachments")


if __name__ == "__main__":
    sys.exit(main())
