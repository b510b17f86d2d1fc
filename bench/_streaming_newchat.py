"""Streaming phase `newchat`: a new chat's first token against a follow-up's, over HTTP and
in Chromium, and the statements of each send.

Why a module of its own: one phase of bench_streaming.py (its docstring names the figures),
each phase in its own module over the shared harness.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from _client import MODEL
from _harness import comment, report, script
from _streaming_context import Context, answers_settled, fake_idle
from _streaming_data import send_statements

NEW_CHAT_SAMPLES = 30
NEW_CHAT_TOKENS = 20
NEW_CHAT_PACE = 0.005


async def phase_new_chat(ctx: Context) -> None:
    """A new chat's first token against a follow-up's, each from the send request."""
    new_chat: list[float] = []
    follow_up: list[float] = []
    posts: dict[str, list[float]] = {"new": [], "follow": []}

    # The provider's first token comes almost at once (a provider's own delay would hide the
    # send's cost, which is what differs: the answer starts before the send's response is
    # rendered), and the answer still streams when the stream opens.
    def answer_script() -> Any:
        return script(NEW_CHAT_TOKENS, delay=NEW_CHAT_PACE)

    for _ in range(NEW_CHAT_SAMPLES):
        ctx.fake.enqueue(answer_script(), script(1))  # the answer, then a title
        created = await ctx.client.answer("", None)
        await fake_idle(ctx.fake)
        ctx.fake.enqueue(answer_script())
        followed = await ctx.client.answer(created.chat_id, created.answer_id)
        for stream in (created, followed):
            if stream.status != "complete":
                raise RuntimeError(f"an answer ended {stream.status}")
        new_chat.append(created.ttft)
        follow_up.append(followed.ttft)
        posts["new"].append(created.sent - created.started)
        posts["follow"].append(followed.sent - followed.started)
    ms = 1000
    new_median = statistics.median(new_chat) * ms
    follow_median = statistics.median(follow_up) * ms
    comment(
        f"{NEW_CHAT_SAMPLES} pairs (a new chat, then a follow-up in it); the provider sends "
        f"{NEW_CHAT_TOKENS} tokens, one every {NEW_CHAT_PACE * 1000:.0f} ms"
    )
    report("new_chat_send_response_median", statistics.median(posts["new"]) * ms, "ms")
    report("follow_up_send_response_median", statistics.median(posts["follow"]) * ms, "ms")
    report("new_chat_first_token_median", new_median, "ms")
    report("follow_up_first_token_median", follow_median, "ms")
    ratio = new_median / follow_median
    report("new_chat_vs_follow_up", ratio, "ratio", "<= 1.2x a follow-up's", ratio <= 1.2)
    await _new_chat_statements(ctx)
    await _new_chat_in_a_browser(ctx)


async def _new_chat_statements(ctx: Context) -> None:
    """The statements of a new chat's send and of a follow-up's in it, in this process (the
    second new chat's: the first fills this process's caches, as the server's are)."""
    for _ in range(2):
        ctx.fake.enqueue(script(1), script(1))  # the answer, then a title
        new_chat, answer_id = await asyncio.to_thread(send_statements, ctx.user_id, "", None)
        await answers_settled(ctx.conninfo)
        await fake_idle(ctx.fake)
    with psycopg.connect(ctx.conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT chat_id FROM chats_message WHERE id = %s", [answer_id]
        ).fetchone()
    assert row is not None
    chat_id = str(row[0])
    ctx.fake.enqueue(script(1))
    follow_up, _ = await asyncio.to_thread(send_statements, ctx.user_id, chat_id, answer_id)
    await answers_settled(ctx.conninfo)
    report("new_chat_send_sql_statements", len(new_chat), "count")
    report(
        "follow_up_send_sql_statements",
        len(follow_up),
        "count",
        "a new chat's no more than a follow-up's",
        len(new_chat) <= len(follow_up),
        "(Django CaptureQueriesContext around the test client, in-process, BEGIN/COMMIT included)",
    )


NEW_CHAT_BROWSER_SAMPLES = 15
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

# In the page: the time of Enter in the composer, and when the newest answer first shows text
# (a streamed delta, or the finished answer when it ended before its stream opened).
FIRST_TEXT_WATCH = """
() => {
  window.benchEnter = null;
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter") window.benchEnter = performance.now();
  }, true);
  window.benchArm = () => {
    window.benchFirst = null;
    const before = document.querySelectorAll("article.message-assistant").length;
    const observer = new MutationObserver(() => {
      const answers = document.querySelectorAll("article.message-assistant");
      if (answers.length <= before) return;
      const answer = answers[answers.length - 1];
      const live = answer.querySelector("[data-stream-text]");
      const text = live ? live.textContent : answer.querySelector(".message-content")?.textContent;
      if (text && text.trim()) {
        window.benchFirst = performance.now();
        observer.disconnect();
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true });
  };
}
"""


async def _first_text_after_enter(page: Any, text: str) -> float:
    await page.evaluate("window.benchArm()")
    await page.locator("[data-send-button]:enabled").wait_for()
    composer = page.get_by_label("Message")
    await composer.fill(text)
    await composer.press("Enter")
    try:
        await page.wait_for_function("window.benchFirst !== null")
    except Exception:
        comment(f"no first text on {page.url}")
        raise
    elapsed = await page.evaluate("window.benchFirst - window.benchEnter")
    await page.locator("article.message-assistant.status-complete").last.wait_for()
    return float(elapsed) / 1000


async def _new_chat_in_a_browser(ctx: Context) -> None:
    """The same pairs in Chromium, from Enter to the answer's first text on the page."""
    if not Path(CHROMIUM).exists():
        comment(f"{CHROMIUM} is missing: the browser figures are skipped")
        return
    from playwright.async_api import async_playwright

    new_chat: list[float] = []
    follow_up: list[float] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        page = await (await browser.new_context(base_url=ctx.server.base)).new_page()
        page.set_default_timeout(15_000)
        for index in range(NEW_CHAT_BROWSER_SAMPLES + 1):  # the first pair warms up
            await page.goto("/")
            # As a person would: the page has loaded (htmx and chat.js are deferred) and is
            # quiet before they send.
            await page.wait_for_load_state("networkidle")
            await page.evaluate(FIRST_TEXT_WATCH)
            await page.get_by_label("Model").select_option(MODEL)
            ctx.fake.enqueue(script(NEW_CHAT_TOKENS, delay=NEW_CHAT_PACE), script(1))
            created = await _first_text_after_enter(page, "hi")
            await fake_idle(ctx.fake)  # the title, generated after the answer
            # The sidebar lists the new chat (chat.js fetches it a moment after the start):
            # that request must not land in the follow-up's measurement.
            await page.wait_for_url("**/c/*/")  # the page becomes the chat's after its first text
            path = urlsplit(page.url).path
            await page.locator(f'#chat-list a[href="{path}"]').wait_for()
            ctx.fake.enqueue(script(NEW_CHAT_TOKENS, delay=NEW_CHAT_PACE))
            followed = await _first_text_after_enter(page, "and then?")
            await fake_idle(ctx.fake)
            if index:
                new_chat.append(created)
                follow_up.append(followed)
        await browser.close()
    ms = 1000
    new_median = statistics.median(new_chat) * ms
    follow_median = statistics.median(follow_up) * ms
    comment(f"Chromium, {NEW_CHAT_BROWSER_SAMPLES} pairs after one to warm up, from Enter")
    report("new_chat_first_token_browser_median", new_median, "ms")
    report("follow_up_first_token_browser_median", follow_median, "ms")
    ratio = new_median / follow_median
    report("new_chat_vs_follow_up_browser", ratio, "ratio", "<= 1.2x a follow-up's", ratio <= 1.2)
