"""bench_tree.py's HTTP figures: the chat page and the tree operations against a server.

Why a module of its own: these figures go through Daphne (bench/_server.py, started by the
harness) as a logged-in browser tab would, on keep-alive connections, with its cookies and
CSRF token; the in-process figures are in _tree_inprocess.py.
"""

from __future__ import annotations

import functools
import http.client
import re
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import _tree_data as data
from _harness import comment, median_ms, timed_runs
from _tree_world import MESSAGE_ID, World, page_route_problem, report

CSRF_IN_PAGE = re.compile(r"hx-headers='\{\"X-CSRFToken\": \"([^\"]+)\"\}'")


@dataclass
class Browser:
    """One logged-in tab: keep-alive connection, the session and CSRF cookies, the page's
    CSRF token in X-CSRFToken and HX-Request on htmx requests, as htmx sends them."""

    port: int
    cookies: dict[str, str]
    token: str = ""
    conn: http.client.HTTPConnection | None = None

    def request(
        self, method: str, path: str, form: dict[str, str] | None = None, *, htmx: bool = False
    ) -> tuple[int, bytes, float]:
        headers = {
            "Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
            "Accept": "text/html,*/*",
        }
        body = None
        if htmx:
            headers.update({
                "HX-Request": "true",
                "HX-Target": "chat-body",
                "HX-Current-URL": f"http://127.0.0.1:{self.port}{path.rsplit('/m/', 1)[0]}/",
                "X-CSRFToken": self.token,
            })  # fmt: skip
        if form is not None:
            body = urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = f"http://127.0.0.1:{self.port}"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            began = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                content = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            took = time.perf_counter() - began
            for header, value in response.getheaders():
                if header.lower() == "set-cookie":
                    name, _, rest = value.partition("=")
                    self.cookies[name.strip()] = rest.split(";", 1)[0]
            if response.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return response.status, content, took
        raise AssertionError("unreachable")


def browser_login(world: World, port: int) -> Browser:
    """A session made by Django's force_login (in this process, same database)."""
    from django.conf import settings
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(id=world.user_id))
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    browser = Browser(port=port, cookies={settings.SESSION_COOKIE_NAME: session})
    status, content, _ = browser.request("GET", f"/c/{world.shapes['d4'].chat_id}/")
    found = CSRF_IN_PAGE.search(content.decode())
    if status != 200 or found is None or "csrftoken" not in browser.cookies:
        raise RuntimeError(f"logged-in page answered {status} without a CSRF token")
    browser.token = found.group(1)
    return browser


def phase_page(world: World, browser: Browser) -> float:
    """The chat page, 10 and 10,000 messages; returns the 10,000-message page's median s."""

    def page(name: str) -> tuple[float, int]:
        status, content, took = browser.request("GET", f"/c/{world.shapes[name].chat_id}/")
        if status != 200:
            raise RuntimeError(f"page of {name} answered {status}")
        problem = page_route_problem(content.decode(), world.shapes[name])
        if problem:
            raise RuntimeError(f"page of {name}: {problem}")
        return took, len(content)

    page("d4")  # warm-up
    page("d4alt")  # checked only: the depth-10 chat of select, edit and delete
    sizes: dict[str, int] = {}

    def run(name: str) -> float:
        took, sizes[name] = page(name)
        return took

    small = timed_runs(lambda: run("d4"), runs=20, budget=10)
    large = timed_runs(lambda: run("d1"), runs=7, budget=25)
    comment(
        f"runs: {len(small)} (10 messages), {len(large)} (10,000); each page checked: it shows "
        "the end of the dataset's route, in order"
    )
    report("tree_page_10_ms", median_ms(small), "ms")
    report("tree_page_10_kb", sizes["d4"] / 1024, "kb")
    value = median_ms(large)
    report("tree_page_10000_ms", value, "ms", "<= 80 ms", value <= 80)
    kb = sizes["d1"] / 1024
    report("tree_page_10000_kb", kb, "kb", "<= 300 kb", kb <= 300)
    ratio = value / median_ms(small)
    report("tree_page_x_vs_10", ratio, "ratio", "<= 1.3", ratio <= 1.3)
    return statistics.median(large)


def phase_operations(world: World, browser: Browser, page_seconds: float) -> None:
    """Select, edit (a new version of an answer) and delete on the last message of the route
    at depth 10 and 10,000, each run on the chat as built (put back after every run)."""
    deep, shallow = world.shapes["d1"], world.shapes["d4alt"]
    alternative = {s.name: s.id_of(len(s.branches) - 1, 0) for s in (deep, shallow)}
    scopes = ["version"] if page_seconds > 1 else ["version", "single", "turn"]
    # (figure, path under /c/<chat>, form) for each operation, on a chat.
    Request = Callable[[data.Shape], tuple[str, dict[str, str]]]

    def select(shape: data.Shape) -> tuple[str, dict[str, str]]:
        # As the version switcher ("<" ">") posts it.
        return f"/m/{alternative[shape.name]}/select", {"sibling": "1"}

    def edit(shape: data.Shape) -> tuple[str, dict[str, str]]:
        return f"/m/{shape.leaf}/edit", {"text": "A shorter answer.", "mode": "version"}

    def delete(scope: str) -> Request:
        return lambda shape: (f"/m/{shape.leaf}/delete", {"scope": scope})

    operations: list[tuple[str, Request]] = [("select", select), ("edit", edit)]
    operations += [("delete" if s == "version" else f"delete_{s}", delete(s)) for s in scopes]
    if len(scopes) == 1:
        comment(
            "delete: scope=version (this version and what follows); scopes single and turn are "
            "measured too when the long page takes under 1 s"
        )
    for name, request in operations:
        sizes: dict[str, int] = {}

        def run(
            shape: data.Shape,
            name: str = name,
            request: Any = request,
            sizes: dict[str, int] = sizes,
        ) -> float:
            suffix, form = request(shape)
            # As the page does: the tree version it shows (chat.js adds it to every POST).
            form = {**form, "version": str(tree_version(shape.chat_id))}
            path = f"/c/{shape.chat_id}{suffix}"
            status, content, took = browser.request("POST", path, form, htmx=True)
            if status != 200:
                raise RuntimeError(f"{name} on {shape.name} answered {status}: {content[:300]!r}")
            sizes[shape.name] = len(content)
            if name == "select":  # the body now ends with the version just selected
                shown = MESSAGE_ID.findall(content.decode())
                if not shown or uuid.UUID(shown[-1]) != alternative[shape.name]:
                    raise RuntimeError(f"select on {shape.name}: the version is not shown")
            world.restore(shape.name)
            return took

        run(shallow)  # warm-up
        small = timed_runs(functools.partial(run, shallow), runs=15, budget=6)
        large = timed_runs(functools.partial(run, deep), runs=7, budget=12)
        comment(f"{name}: {len(small)} runs at depth 10, {len(large)} at depth 10,000")
        report(f"tree_{name}_depth_10_ms", median_ms(small), "ms")
        report(f"tree_{name}_depth_10000_ms", median_ms(large), "ms")
        report(f"tree_{name}_depth_10000_kb", sizes[deep.name] / 1024, "kb")
        ratio = median_ms(large) / median_ms(small)
        report(f"tree_{name}_depth_10000_x_vs_10", ratio, "ratio", "<= 1.5", ratio <= 1.5)


def tree_version(chat_id: Any) -> int:
    from chats.models import Chat

    return int(Chat.objects.filter(id=chat_id).values_list("tree_version", flat=True).get())


def check_long_pages(world: World, browser: Browser, page_seconds: float) -> None:
    """The 100,000-message chats' pages show their routes (only when pages are fast)."""
    if page_seconds > 1:
        comment(
            "pages of the 100,000-message chats not fetched (the 10,000-message page takes "
            f"{page_seconds:.1f} s here); their routes were checked in-process"
        )
        return
    for name in ("d2", "d3"):
        status, content, took = browser.request("GET", f"/c/{world.shapes[name].chat_id}/")
        problem = page_route_problem(content.decode(), world.shapes[name])
        if status != 200 or problem:
            raise RuntimeError(f"page of {name} answered {status}: {problem}")
        comment(f"page of {name}: {took * 1000:.0f} ms, {len(content) / 1024:.0f} kb, route ok")
