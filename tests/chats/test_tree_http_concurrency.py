"""Two and three browser tabs of one person racing on one chat, over real HTTP.

Each round, every tab builds a request from the page it last loaded (as a stale tab would:
the ids in its form are the ones its page showed), and all tabs fire at the same moment from
their own HTTP sessions against a live Daphne server. After the round the chat's stored tree is
checked with plain SQL (tests/chats/tree_invariants.py, which shares no code with the app's
tree), and the page is checked to show exactly the route those tables select.

A racing request may be refused (400, 404, 409: the tab was stale) but never answered with a
5xx, and the tree must stay whole. The run is seeded: the seed is in every failure message.
Knobs, for hunting and replaying:
- `TREE_HTTP_SEED=<seed>` replays the same sequence of requests (the timing still varies);
- `TREE_HTTP_KINDS=send/send,send/delete:turn:parent` restricts the rounds to combinations;
- `TREE_HTTP_ROUNDS=<n>` plays more (or fewer) rounds;
- `TREE_HTTP_SURVEY=1` plays every round instead of stopping at the first problem (a broken
  chat is left for a new one) and reports the problems by combination.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.conf import settings
from django.db import connection, transaction
from django.test import Client

from accounts.models import User
from chats.models import Chat, Message
from chats.selectors import chat_tree_load
from models_registry.models import Tier
from tests.chats.branching_support import conversation, say
from tests.chats.tree_invariants import (
    branch_seq_gaps,
    route_from_tables,
    tree_violations,
)
from tests.helpers import fake_model_register
from tests.live_http import HttpSession, Page
from tests.live_server import LiveServer, live_server_start

pytestmark = pytest.mark.django_db(transaction=True)

# A stale request may be refused; anything else (a 5xx above all) is a failure.
ACCEPTED_REFUSALS = frozenset({400, 404, 409})
# The route is kept between these lengths: long enough for "above" targets and a window,
# short enough that a round stays cheap.
ROUTE_MIN, ROUTE_MAX = 20, 30
# Targets are taken among the page's last messages: where two tabs' changes meet.
NEAR = 6
STALE_TAB_CHANCE = 0.25
# The check after a round loads the chat's body (as a tab does when an answer finishes), and
# the whole page every few rounds: both render the route.
WHOLE_PAGE_EVERY = 5  # a tab keeps the page it had, instead of loading the chat again
ANSWERS_TIMEOUT_SECONDS = 20.0
LOCK = {"chats.tree_services:chat_lock": "tests.chats.tree_invariants:no_lock"}

# What each round combines: "send", "select", "fork", "regenerate", "edit:<mode>",
# "delete:<scope>:<where>" (where: the tab's last message, "parent", or one "above" it),
# "delete" (any scope and place) and "any" (any of these).
PAIRS: tuple[tuple[str, ...], ...] = (
    ("send", "send"),
    ("send", "delete:version:parent"),
    ("send", "delete:version:above"),
    ("send", "delete:turn:parent"),
    ("send", "delete:turn:above"),
    ("send", "delete:single:parent"),
    ("send", "delete:single:above"),
    ("edit:version", "select"),
    ("fork", "delete"),
    ("regenerate", "delete"),
    ("any", "any"),
    ("any", "any"),
)
TRIPLES: tuple[tuple[str, ...], ...] = (
    ("send", "send", "send"),
    ("send", "send", "delete"),
    ("send", "delete:single:above", "delete:turn:parent"),
    ("send", "regenerate", "delete"),
    ("edit:version", "select", "delete"),
    ("regenerate", "regenerate", "edit:version"),
    ("fork", "delete", "send"),
    ("any", "any", "any"),
    ("any", "any", "any"),
)
# Without a send: what the chat's lock alone keeps apart (sends lock in their own statement).
LOCK_ONLY: tuple[tuple[str, ...], ...] = (
    ("regenerate", "regenerate"),
    ("edit:version", "regenerate"),
    ("edit:version", "edit:version"),
    ("regenerate", "delete"),
    ("edit:version", "delete"),
    ("delete:single:above", "delete:single:parent"),
    ("delete:single:above", "regenerate"),
)


# ---------------------------------------------------------------------------------------------
# What a page shows


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SELECT_URL = re.compile(rf'hx-post="[^"]*/m/({_UUID})/select"')
_ARTICLE = re.compile(r"<article\b[^>]*>")
_PARENT_INPUT = re.compile(r"<input\b[^>]*\bdata-parent-input\b[^>]*>")
_ATTRIBUTE = re.compile(r"""([\w-]+)(?:="([^"]*)")?""")
_MESSAGES = re.compile(r"""<div\b[^>]*\bid="messages"[^>]*>""")


@dataclass(frozen=True)
class Shown:
    """What one load of the chat's page showed: its messages in order, and its forms' ids."""

    ids: tuple[uuid.UUID, ...]
    roles: dict[uuid.UUID, str]
    parent: uuid.UUID | None  # the composer's `parent` input
    selectable: tuple[uuid.UUID, ...]  # versions and map nodes it offers to show


def _attributes(tag: str) -> dict[str, str]:
    return {name: value for name, value in _ATTRIBUTE.findall(tag[1:-1])}


def shown_read_parent(html: str) -> uuid.UUID | None:
    """The composer's `parent` input in a page or a partial (a send's answers it out of band)."""
    inputs = [_attributes(tag) for tag in _PARENT_INPUT.findall(html)]
    parents = [fields.get("value", "") for fields in inputs if fields.get("name") == "parent"]
    assert len(parents) <= 1, "the page has several parent inputs"
    return uuid.UUID(parents[0]) if parents and parents[0] else None


def _articles(html: str, start: int = 0) -> tuple[list[uuid.UUID], dict[uuid.UUID, str]]:
    ids: list[uuid.UUID] = []
    roles: dict[uuid.UUID, str] = {}
    for tag in _ARTICLE.finditer(html, start):
        attributes = _attributes(tag.group())
        if "data-message-id" in attributes:
            message_id = uuid.UUID(attributes["data-message-id"])
            ids.append(message_id)
            classes = attributes.get("class", "").split()
            roles[message_id] = "user" if "message-user" in classes else "assistant"
    return ids, roles


def shown_read(html: str) -> Shown:
    """Read a page (or the chat's body partial): the `<article data-message-id>`s inside
    `#messages`, in order, the composer's `parent` input and every "show this version" target.

    Regular expressions over the templates' tags: a full HTML parser took 50 ms a page.
    Text inside messages is escaped, so it cannot imitate a tag.
    """
    opening = _MESSAGES.search(html)
    assert opening is not None, "the page has no #messages"
    ids, roles = _articles(html, opening.end())
    return Shown(
        ids=tuple(ids),
        roles=roles,
        parent=shown_read_parent(html),
        selectable=tuple(dict.fromkeys(uuid.UUID(found) for found in _SELECT_URL.findall(html))),
    )


def shown_after_send(shown: Shown, turn: str) -> Shown:
    """The page once a send's answer (templates/chats/_turn.html) is in: the turn's messages
    appended to #messages and the composer's parent replaced, as htmx does."""
    ids, roles = _articles(turn)
    return Shown(
        ids=(*shown.ids, *ids),
        roles={**shown.roles, **roles},
        parent=shown_read_parent(turn),
        selectable=shown.selectable,
    )


# ---------------------------------------------------------------------------------------------
# Requests a tab makes


@dataclass(frozen=True)
class Request:
    kind: str  # e.g. "send", "delete:turn:above"
    url: str
    fields: dict[str, str]
    target: uuid.UUID | None


@dataclass(frozen=True)
class Outcome:
    tab: int
    request: Request
    status: int
    body: str

    def line(self) -> str:
        target = str(self.request.target)[:8] if self.request.target else "-"
        said = ""
        if self.status >= 400:
            text = re.sub(r"<(style|script|title)[^>]*>.*?</\1>", " ", self.body, flags=re.S)
            text = re.sub(r"<[^>]+>", " ", text)
            said = " " + " ".join(text.split())[:120]
        return f"tab {self.tab}: {self.request.kind} {target} -> {self.status}{said}"


def _near(shown: Shown) -> Sequence[uuid.UUID]:
    return shown.ids[-NEAR:]


def _above(shown: Shown) -> Sequence[uuid.UUID]:
    """Messages above the tab's last one, never the first (deleting it can delete the chat)."""
    return shown.ids[max(1, len(shown.ids) - NEAR) : -1]


def request_build(
    kind: str, *, chat_id: uuid.UUID, shown: Shown, rng: random.Random, model: str, label: str
) -> Request:
    """The request a tab showing `shown` makes for `kind` (a send when nothing fits)."""
    base = f"/c/{chat_id}"
    if kind == "any":
        kind = rng.choice(
            ["send", "select", "fork", "regenerate", "edit:version", "edit:in_place",
             "edit:fork", "delete"]
        )  # fmt: skip
    if kind == "delete":
        kind = (
            f"delete:{rng.choice(['version', 'turn', 'single'])}:{rng.choice(['parent', 'above'])}"
        )
    text = f"{label} {rng.choice(['why', 'and then', 'tell me more', 'ok'])}"
    if kind.startswith("delete:"):
        _, scope, where = kind.split(":")
        candidates = _above(shown) if where == "above" else shown.ids[-1:]
        candidates = [message_id for message_id in candidates if message_id != shown.ids[0]]
        if candidates:
            target = rng.choice(candidates)
            return Request(kind, f"{base}/m/{target}/delete", {"scope": scope}, target)
        kind = "send"
    if kind.startswith("edit:"):
        target = rng.choice(_near(shown))
        fields = {"text": text, "mode": kind.split(":")[1], "model": model}
        return Request(kind, f"{base}/m/{target}/edit", fields, target)
    if kind == "select":
        target = rng.choice(shown.selectable or shown.ids)
        return Request(kind, f"{base}/m/{target}/select", {}, target)
    if kind == "fork":
        target = rng.choice(_near(shown))
        return Request(kind, f"{base}/m/{target}/fork", {}, target)
    if kind == "regenerate":
        answers = [m for m in _near(shown) if shown.roles[m] == "assistant"]
        if answers:
            target = rng.choice(answers)
            return Request(kind, f"{base}/m/{target}/regenerate", {"model": model}, target)
    fields = {"text": text, "model": model, "parent": str(shown.parent or "")}
    return Request("send", f"{base}/send", fields, shown.parent)


# ---------------------------------------------------------------------------------------------
# The race


@dataclass
class Race:
    """One chat, several tabs of its owner, a seeded sequence of rounds and what they found."""

    server: LiveServer
    user: User
    model: str
    tabs: list[HttpSession]
    rng: random.Random
    seed: int
    chat_id: uuid.UUID = field(default_factory=uuid.uuid4)
    pages: list[Shown | None] = field(default_factory=list)
    latest: Shown | None = None  # the page as the last check loaded it
    checked_chats: set[uuid.UUID] = field(default_factory=set)
    abandoned: set[uuid.UUID] = field(default_factory=set)  # broken chats a survey left
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    gets: int = 0
    kinds: Sequence[str] = ()  # what the last round combined
    played: Counter[str] = field(default_factory=Counter)  # rounds by combination
    rounds_with_gaps: int = 0  # rounds after which a branch's seq skipped numbers (allowed)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # where time goes
    rounds: int = 0
    history: list[str] = field(default_factory=list)

    # -- plumbing --------------------------------------------------------------------------

    def _load(self, tab: int, *, whole: bool = True) -> Shown:
        """Load the chat's page in `tab`: the whole page, or its body as the page reloads it
        when an answer finishes (static/js/chat.js)."""
        self.gets += 1
        started = time.monotonic()
        if whole:
            page = self.tabs[tab].get(f"/c/{self.chat_id}/")
        else:
            page = self.tabs[tab].get(f"/c/{self.chat_id}/?part=body", {"HX-Request": "true"})
        self.seconds["page loads"] += time.monotonic() - started
        assert page.status == 200, self._report(f"the chat's page answered {page.status}")
        shown = shown_read(page.text)
        self.pages[tab] = self.latest = shown
        return shown

    def _post_alone(self, url: str, fields: dict[str, str]) -> Page:
        page = self.tabs[0].htmx_post(url, fields)
        assert page.status < 400, self._report(f"setup request {url} answered {page.status}")
        stuck = self.answers_wait()
        assert stuck is None, self._report(stuck)
        return page

    def answers_wait(self) -> str | None:
        """Wait until none of the user's chats in play has an answer being generated; the
        problem if one is still `streaming` after ANSWERS_TIMEOUT_SECONDS."""
        started = time.monotonic()
        deadline = started + ANSWERS_TIMEOUT_SECONDS
        while True:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT m.id FROM chats_message m JOIN chats_chat c ON c.id = m.chat_id "
                    "WHERE c.user_id = %s AND m.status = 'streaming' "
                    "AND NOT c.id = ANY(%s::uuid[])",
                    [self.user.id, list(self.abandoned)],
                )
                streaming = [row[0] for row in cursor.fetchall()]
            if not streaming:
                self.seconds["answers"] += time.monotonic() - started
                return None
            if time.monotonic() > deadline:
                return (
                    f"answer {streaming[0]} still streaming after {ANSWERS_TIMEOUT_SECONDS} s "
                    "(its generation could not save its end: see the server log)"
                )
            time.sleep(0.01)

    def _report(self, problem: str) -> str:
        recent = "\n".join(self.history[-12:])
        return (
            f"{problem}\nseed {self.seed} (TREE_HTTP_SEED={self.seed} replays it), "
            f"round {self.rounds}, chat {self.chat_id}\nlast rounds:\n{recent}"
        )

    # -- the chat --------------------------------------------------------------------------

    def start(self) -> None:
        """A new chat through the home page's composer, grown to ROUTE_MIN messages, with a
        few versions on its route."""
        for tab in self.tabs:
            tab.get("/")  # the CSRF cookie, as the first visit sets it
        self.pages = [None] * len(self.tabs)
        self.latest = None
        self._post_alone("/c/send", {"text": "Let us talk", "model": self.model})
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM chats_chat WHERE user_id = %s ORDER BY created_at", [self.user.id]
            )
            self.chat_id = cursor.fetchall()[-1][0]
        self.grow()
        for number in range(3):  # versions: a regenerated answer, an edited question
            shown = self._load(0, whole=False)
            answer = next(m for m in reversed(shown.ids[:-2]) if shown.roles[m] == "assistant")
            self._post_alone(f"/c/{self.chat_id}/m/{answer}/regenerate", {})
            shown = self._load(0, whole=False)
            question = shown.ids[-(4 + 2 * number)]
            self._post_alone(
                f"/c/{self.chat_id}/m/{question}/edit",
                {"text": f"edited {number}", "mode": "version", "model": self.model},
            )
            self.grow()
        self.check()

    def grow(self) -> None:
        """Send from one tab, one at a time, until the route has ROUTE_MIN messages; the page
        takes in each turn as the browser does (`shown_after_send`)."""
        started = time.monotonic()
        shown = self.latest or self._load(0)
        # From the tables: the page may show only a window of the route.
        length = len(route_from_tables(chat_id=self.chat_id))
        while length < ROUTE_MIN:
            page = self._post_alone(
                f"/c/{self.chat_id}/send",
                {"text": "more", "model": self.model, "parent": str(shown.parent or "")},
            )
            shown = shown_after_send(shown, page.text)
            length += 2
        self.latest = self.pages[0] = shown
        self.seconds["growth"] += time.monotonic() - started

    # -- rounds ----------------------------------------------------------------------------

    def round(self, kinds: Sequence[str]) -> str | None:
        """Fire one request per tab at once, then check; the problem found, if any."""
        self.rounds += 1
        # The chat stays between ROUTE_MIN and ROUTE_MAX messages: one tab sends alone while
        # it is short (cheaper than racing rounds, and the round then plays what it was
        # meant to), one of the racing tabs deletes a turn above while it is long.
        length = len(route_from_tables(chat_id=self.chat_id))
        if length < ROUTE_MIN:
            self.grow()
        elif length > ROUTE_MAX:
            kinds = ["delete:turn:above", *kinds[1:]]
        self.kinds = kinds
        self.played["/".join(kinds)] += 1
        for tab in range(len(kinds)):
            # Nothing changed since the last check loaded the page: a tab that reloads now
            # sees that page; a stale one keeps what it showed before.
            page = self.pages[tab]
            if page is None or not page.ids or self.rng.random() >= STALE_TAB_CHANCE:
                self.pages[tab] = self.latest
        if all(kind == "send" for kind in kinds):  # sends from the same parent
            self.pages[1:] = [self.pages[0]] * (len(kinds) - 1)
        requests = []
        for tab, kind in enumerate(kinds):
            page = self.pages[tab]
            assert page is not None
            requests.append(
                request_build(
                    kind,
                    chat_id=self.chat_id,
                    shown=page,
                    rng=self.rng,
                    model=self.model,
                    label=f"r{self.rounds}t{tab}",
                )
            )
        started = time.monotonic()
        outcomes = self._fire(requests)
        self.seconds["racing requests"] += time.monotonic() - started
        self.history.append(
            f"round {self.rounds} ({'/'.join(kinds)}): "
            + "; ".join(outcome.line() for outcome in outcomes)
        )
        for outcome in outcomes:
            self.requests[outcome.request.kind] += 1
            self.statuses[f"{outcome.request.kind.split(':')[0]} {outcome.status}"] += 1
        bad = [o for o in outcomes if o.status >= 400 and o.status not in ACCEPTED_REFUSALS]
        broken = self.answers_wait() or self.check()
        problems = [
            *(["unexpected answers: " + "; ".join(o.line() for o in bad)] if bad else []),
            *([broken] if broken else []),
        ]
        return "\n".join(problems) or None

    def _fire(self, requests: Sequence[Request]) -> list[Outcome]:
        barrier = threading.Barrier(len(requests))
        outcomes: list[Outcome | None] = [None] * len(requests)
        errors: list[BaseException] = []

        def run(tab: int, request: Request) -> None:
            try:
                barrier.wait(10)
                page = self.tabs[tab].htmx_post(request.url, request.fields)
                outcomes[tab] = Outcome(tab, request, page.status, page.text)
            except BaseException as error:  # reported below, in this thread
                errors.append(error)

        threads = [
            threading.Thread(target=run, args=(tab, request))
            for tab, request in enumerate(requests)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, self._report(f"a tab's request failed: {errors[0]!r}")
        assert all(outcomes), self._report("a tab's request did not finish within 60 s")
        return [outcome for outcome in outcomes if outcome is not None]

    def check(self) -> str | None:
        """The stored trees are whole and the page shows the route their tables select."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT id FROM chats_chat WHERE user_id = %s", [self.user.id])
            chats = [row[0] for row in cursor.fetchall()]
        if self.chat_id not in chats:
            return "the chat was deleted"
        started = time.monotonic()
        # Forks are written once and never touched again: each is checked once.
        for chat_id in [self.chat_id, *(c for c in chats if c not in self.checked_chats)]:
            violations = tree_violations(chat_id=chat_id)
            if violations:
                gaps = branch_seq_gaps(chat_id=chat_id)
                return (
                    f"chat {chat_id}: "
                    + "; ".join(violations[:8])
                    + (f" (seq gaps: {'; '.join(gaps[:4])})" if gaps else "")
                )
            if chat_id != self.chat_id:
                self.checked_chats.add(chat_id)
        if branch_seq_gaps(chat_id=self.chat_id):
            self.rounds_with_gaps += 1
        route = route_from_tables(chat_id=self.chat_id)
        self.seconds["sql checks"] += time.monotonic() - started
        tab = self.rng.randrange(len(self.tabs))
        shown = self._load(tab, whole=self.rounds % WHOLE_PAGE_EVERY == 0)
        window = getattr(settings, "CHAT_WINDOW_MESSAGES", None)
        expected = min(len(route), window) if window else len(route)
        if len(shown.ids) != expected or list(shown.ids) != route[len(route) - expected :]:
            return (
                f"the page shows {len(shown.ids)} messages, not the last {expected} of the "
                f"{len(route)} on the route its tables select"
            )
        end = route[-1] if route else None
        if shown.parent != end:
            return f"the composer's parent is {shown.parent}, not the route's end {end}"
        return None

    def summary(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.requests.items()))
        statuses = ", ".join(f"{key}: {count}" for key, count in sorted(self.statuses.items()))
        return (
            f"seed {self.seed}: {self.rounds} rounds, {sum(self.requests.values())} racing "
            f"requests ({kinds}); {self.gets} page loads; {self.rounds_with_gaps} rounds ended "
            f"with a gap in a branch's seq\nstatuses: {statuses}\nseconds: "
            + ", ".join(f"{name} {value:.1f}" for name, value in self.seconds.items())
        )


def _seed() -> int:
    configured = os.environ.get("TREE_HTTP_SEED")
    return int(configured) if configured else random.SystemRandom().randrange(10**9)


def _kinds_from_env(default: Sequence[tuple[str, ...]]) -> Sequence[tuple[str, ...]]:
    configured = os.environ.get("TREE_HTTP_KINDS")
    if not configured:
        return default
    return [tuple(combination.split("/")) for combination in configured.split(",")]


@contextmanager
def race_on(
    user: User, fake_llm: Any, *, tabs: int, patches: dict[str, str] | None = None
) -> Iterator[Race]:
    """A live server, the fake provider's model without a rate limit, `tabs` logged-in
    sessions of `user` and a chat of ROUTE_MIN+ messages with versions."""
    model = fake_model_register(fake_llm.base_url)
    Tier.objects.filter(slug__in=["regular", "guest"]).update(
        bucket_capacity=10**6, refill_amount=10**6
    )
    server = live_server_start(patches=patches)
    try:
        sessions = []
        for _ in range(tabs):
            client = Client()
            client.force_login(user)
            session = HttpSession(server.url)
            session.cookie_set(
                settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value
            )
            sessions.append(session)
        seed = _seed()
        race = Race(
            server=server, user=user, model=model, tabs=sessions, rng=random.Random(seed),
            seed=seed,
        )  # fmt: skip
        race.start()
        yield race
    finally:
        server.stop()


def _server_errors(capfd: pytest.CaptureFixture[str]) -> str:
    """The exceptions the server logged (the last line of each traceback)."""
    captured = capfd.readouterr()
    lines = (captured.out + captured.err).splitlines()
    found = [
        line.strip()
        for line in lines
        if re.match(r"^[\w.]+(Error|Exception)\b.*:", line.strip())
        or "Internal Server Error" in line
    ]
    return "\n".join(dict.fromkeys(found)) or "(nothing logged)"


def _run(
    race: Race, combinations: Sequence[tuple[str, ...]], rounds: int,
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Play `rounds` rounds of the combinations (shuffled); fail at the first problem.

    With TREE_HTTP_SURVEY=1 it plays them all instead, starting a new chat whenever one
    breaks, and fails at the end with every problem grouped by combination.
    """
    survey = os.environ.get("TREE_HTTP_SURVEY") == "1"
    order = [combinations[number % len(combinations)] for number in range(rounds)]
    race.rng.shuffle(order)
    found: dict[str, list[str]] = {}
    started = time.monotonic()
    for kinds in order:
        round_started = time.monotonic()
        problem = race.round(kinds)
        race.seconds["rounds"] += time.monotonic() - round_started
        if problem is None:
            continue
        logged = _server_errors(capfd)
        if not survey:
            pytest.fail(f"{race._report(problem)}\nserver log:\n{logged}\n{race.summary()}")
        found.setdefault("/".join(race.kinds), []).append(
            f"{race.history[-1]}\n  => {problem}\n  server log: {logged}"
        )
        if "unexpected answers" not in problem.splitlines()[-1]:  # the tree broke: a new chat
            race.checked_chats.add(race.chat_id)
            race.abandoned.add(race.chat_id)
            race.start()
    print(f"{race.summary()}\n{time.monotonic() - started:.1f} s")
    if found:
        lines = [f"{kinds}: {len(problems)} of {race.played[kinds]} rounds\n  "
                 + "\n  ".join(problems[:3])
                 for kinds, problems in sorted(found.items())]  # fmt: skip
        pytest.fail(f"seed {race.seed}\n" + "\n".join(lines))


def _rounds(default: int) -> int:
    return int(os.environ.get("TREE_HTTP_ROUNDS", default))


def test_two_tabs_racing_on_one_chat_never_get_a_500_nor_break_its_tree(
    alice: User, fake_llm: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    with race_on(alice, fake_llm, tabs=2) as race:
        _run(race, _kinds_from_env(PAIRS), _rounds(500), capfd)


def test_three_tabs_racing_on_one_chat_never_get_a_500_nor_break_its_tree(
    alice: User, fake_llm: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    with race_on(alice, fake_llm, tabs=3) as race:
        _run(race, _kinds_from_env(TRIPLES), _rounds(350), capfd)


LOCK_ROUNDS = 40


def test_without_the_chat_lock_the_race_finds_a_500_or_a_broken_tree(
    alice: User, fake_llm: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    """The suite can fail: served with `chat_lock` replaced by a no-op, it finds a problem."""
    with race_on(alice, fake_llm, tabs=2, patches=LOCK) as race:
        order = [LOCK_ONLY[number % len(LOCK_ONLY)] for number in range(LOCK_ROUNDS)]
        race.rng.shuffle(order)
        found = next((problem for kinds in order if (problem := race.round(kinds))), None)
        print(f"without the lock, round {race.rounds}: {found}\n{_server_errors(capfd)}")
        assert found is not None, race._report(
            f"{LOCK_ROUNDS} rounds without the chat's lock found nothing"
        )


# ---------------------------------------------------------------------------------------------
# The judge itself: it agrees with the app on whole trees and names each kind of damage.


def _small_tree(user: User) -> tuple[Chat, list[Message], Message]:
    """q0 a1 q2 a3 q4 a5 on one branch, and a second answer to q2 on a branch forked there."""
    chat = Chat.objects.create(user=user)
    messages = conversation(chat, "q0", "a1", "q2", "a3", "q4", "a5")
    other = say(chat, messages[2], "a3 again", role="assistant")
    return chat, messages, other


@pytest.mark.django_db  # no server here: the test's own transaction is enough
@pytest.mark.parametrize("stored", [None, 0, 1, 7])
def test_the_route_from_the_tables_is_the_route_the_app_shows(alice: User, stored: int) -> None:
    chat, messages, _ = _small_tree(alice)
    Message.objects.filter(id=messages[2].id).update(selected_child_index=stored)
    chat.refresh_from_db()
    assert route_from_tables(chat_id=chat.id) == chat_tree_load(chat=chat).active_path()
    assert tree_violations(chat_id=chat.id) == []


CORRUPTIONS = {
    "parent in another chat": (
        "UPDATE chats_message SET parent_id = %(elsewhere)s WHERE id = %(m3)s"
    ),
    # The constraint is not deferrable: it is dropped inside the test's transaction.
    "(branch, seq) not unique": (
        "SET CONSTRAINTS ALL IMMEDIATE; "
        "ALTER TABLE chats_message DROP CONSTRAINT message_branch_seq_unique; "
        "UPDATE chats_message SET seq = 1 WHERE id = %(m2)s"
    ),
    "branch path is not its parent branch's path plus one label": (
        "UPDATE chats_branch SET path = 'zzzz.0000' WHERE id = %(root_branch)s"
    ),
    "fork message not in the parent branch": (
        "UPDATE chats_branch SET fork_message_id = %(other)s WHERE id = %(fork_branch)s"
    ),
    "in-branch parent is not the previous message": (
        "UPDATE chats_message SET seq = 9 WHERE id = %(m3)s"
    ),
    "streaming message has children": (
        "UPDATE chats_message SET status = 'streaming' WHERE id = %(m4)s"
    ),
    "message not reachable from a first message": (
        "UPDATE chats_message SET parent_id = %(m5)s WHERE id = %(m0)s"
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("damage", sorted(CORRUPTIONS))
def test_the_checker_names_each_kind_of_damage(alice: User, damage: str) -> None:
    chat, messages, other = _small_tree(alice)
    elsewhere = conversation(Chat.objects.create(user=alice), "elsewhere")[0]
    names: dict[str, uuid.UUID | int] = {
        **{f"m{number}": message.id for number, message in enumerate(messages)},
        "other": other.id,
        "elsewhere": elsewhere.id,
        "root_branch": messages[0].branch_id,
        "fork_branch": other.branch_id,
    }
    with transaction.atomic():
        with connection.cursor() as cursor:
            for statement in CORRUPTIONS[damage].split("; "):
                cursor.execute(statement, names)
        found = tree_violations(chat_id=chat.id)
        transaction.set_rollback(True)
    assert any(line.startswith(damage) for line in found), found
    assert tree_violations(chat_id=chat.id) == []
