"""Render a chat message from Markdown to sanitized HTML.

Runs once per finished message; the result is stored or cached by the caller and marked safe.
CommonMark plus the GFM pieces chat answers use (tables, strikethrough, bare-URL autolinks, task
lists), fenced code highlighted by Pygments with CSS classes, raw HTML shown as text. Whatever the
renderer emits then goes through nh3 with an allow-list of exactly the markup the renderer can
produce, so a bug in a plugin cannot become an XSS.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import find_lexer_class, get_all_lexers
from pygments.token import STANDARD_TYPES

# Longer messages are shown verbatim: nobody reads 200k characters of rendered Markdown, and the
# cap bounds the work an adversarial message can cause.
MAX_INPUT_CHARS = 200_000
# Highlighting cost depends on the lexer's regexes; a huge block is shown plain rather than
# risking a slow lexer on it.
MAX_HIGHLIGHT_CHARS = 50_000
# markdown-it stops nesting blocks and inline containers at this depth, which bounds both the
# parser's recursion and the depth of the tree nh3 has to walk.
MAX_NESTING = 20
# A fence info string is free text; past this length it is not a language name worth a lookup.
MAX_LANGUAGE_CHARS = 32
# Each of these characters makes markdown-it scan ahead for a partner, and a message made of
# little else costs 10-40 times ordinary prose per character (`![` repeated 100,000 times takes
# over ten seconds). Real answers stay far below these counts; a message above any of them is
# shown verbatim.
SCAN_HEAVY_BUDGET = {"[": 5_000, "*": 20_000, "_": 20_000, "~": 20_000}

HIGHLIGHT_CLASS_PREFIX = "hl-"
LINK_REL = "nofollow noopener noreferrer"

_ALIGNMENTS = ("left", "center", "right")

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "span", "div", "a", "ul", "ol", "li", "input", "blockquote", "table", "thead", "tbody",
    "tr", "th", "td", "button",
}  # fmt: skip
# `class` is absent on purpose: nh3 checks it value by value through `_allowed_classes()`.
# `type` and `disabled` are forced instead, so no input can be a live text field.
_ATTRIBUTES = {
    "a": {"href", "title"},
    "ol": {"start"},
    "input": {"checked"},
    "button": {"type", "data-copy-code"},
}
_FORCED_ATTRIBUTES = {
    "a": {"target": "_blank"},
    "input": {"type": "checkbox", "disabled": ""},
    "button": {"type": "button"},
}
_URL_SCHEMES = {"http", "https", "mailto"}

_COPY_BUTTON = '<button type="button" class="copy-code" data-copy-code>Copy</button>'


def markdown_render(text: str) -> str:
    """Render Markdown to HTML that is safe to insert into a page."""
    if len(text) > MAX_INPUT_CHARS or _over_scan_budget(text):
        return f"<pre>{html.escape(text, quote=False)}</pre>"
    return _cleaner().clean(_parser().render(text))


def _over_scan_budget(text: str) -> bool:
    return any(text.count(char) > budget for char, budget in SCAN_HEAVY_BUDGET.items())


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        # `breaks`: a single newline is a line break, as models write it (poems, addresses,
        # short lines), not CommonMark's soft break.
        {
            "html": False,
            "linkify": False,
            "typographer": False,
            "breaks": True,
            "maxNesting": MAX_NESTING,
        },
    )
    md.enable(["table", "strikethrough"])
    md.use(tasklists_plugin)
    md.core.ruler.push("table_alignment_as_class", _table_alignment_as_class)
    md.core.ruler.push("bare_url_links", _bare_url_links)
    md.add_render_rule("fence", _render_fence)
    md.add_render_rule("code_block", _render_code_block)
    md.add_render_rule("image", _render_image)
    return md


@functools.cache
def _cleaner() -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags={"script", "style"},
        attributes=_ATTRIBUTES,
        set_tag_attribute_values=_FORCED_ATTRIBUTES,
        allowed_classes=_allowed_classes(),
        url_schemes=_URL_SCHEMES,
        # Relative and scheme-relative URLs would point into Vero itself (or, for `//host`, to
        # another site under the page's scheme); a chat message has no business linking either.
        url_relative="deny",
        link_rel=LINK_REL,
        strip_comments=True,
    )


def _allowed_classes() -> dict[str, set[str]]:
    token_classes = {HIGHLIGHT_CLASS_PREFIX + name for name in STANDARD_TYPES.values() if name}
    alignments = {f"align-{alignment}" for alignment in _ALIGNMENTS}
    return {
        "div": {"code-block", "code-block-header"},
        "span": {"code-block-lang", *token_classes},
        "button": {"copy-code"},
        "ul": {"contains-task-list"},
        "ol": {"contains-task-list"},
        "li": {"task-list-item"},
        "th": alignments,
        "td": alignments,
    }


def _table_alignment_as_class(state: StateCore) -> None:
    # markdown-it writes `style="text-align:…"`; style attributes are not allowed through the
    # sanitizer at all, so alignment travels as a class instead.
    for token in state.tokens:
        if token.type not in ("th_open", "td_open"):
            continue
        style = token.attrs.pop("style", None)
        if isinstance(style, str):
            alignment = style.removeprefix("text-align:")
            if alignment in _ALIGNMENTS:
                token.attrSet("class", f"align-{alignment}")


# GFM's autolink extension, for web addresses only. markdown-it's `linkify` needs linkify-it-py
# (not installed), and mdit-py-plugins' `gfm_autolink` re-scans the pending text at every colon,
# which is quadratic: 200,000 characters of "http:" took minutes.
_BARE_URL = re.compile(r"(?<![^\s*_~(])(?:https?://|www\.)[^\s<>\"`]+", re.IGNORECASE)
# Trailing characters that end a sentence rather than the address (GFM trims these too).
_URL_TRAILING_PUNCTUATION = "?!.,:*_~'\""


def _bare_url_links(state: StateCore) -> None:
    for block in state.tokens:
        if block.type != "inline" or not block.children:
            continue
        if "www." not in block.content and "://" not in block.content:
            continue
        children: list[Token] = []
        link_depth = 0
        for token in block.children:
            if token.type == "link_open":
                link_depth += 1
            elif token.type == "link_close":
                link_depth -= 1
            if token.type == "text" and link_depth == 0:
                children.extend(_split_bare_urls(state, token))
            else:
                children.append(token)
        block.children = children


def _split_bare_urls(state: StateCore, token: Token) -> list[Token]:
    text = token.content
    pieces: list[Token] = []
    last_end = 0
    for match in _BARE_URL.finditer(text):
        url = _trim_url(match.group())
        href = state.md.normalizeLink(url if "://" in url else f"http://{url}")
        if not url or not state.md.validateLink(href):
            continue
        start = match.start()
        if start > last_end:
            pieces.append(_text_token(text[last_end:start], token.level))
        link_open = Token("link_open", "a", 1, level=token.level, markup="linkify", info="auto")
        link_open.attrSet("href", href)
        pieces.append(link_open)
        pieces.append(_text_token(state.md.normalizeLinkText(url), token.level + 1))
        pieces.append(
            Token("link_close", "a", -1, level=token.level, markup="linkify", info="auto")
        )
        last_end = start + len(url)
    if not pieces:
        return [token]
    if last_end < len(text):
        pieces.append(_text_token(text[last_end:], token.level))
    return pieces


def _trim_url(url: str) -> str:
    while url:
        last = url[-1]
        unbalanced_paren = last == ")" and url.count(")") > url.count("(")
        if last in _URL_TRAILING_PUNCTUATION or unbalanced_paren:
            url = url[:-1]
        elif last == ";" and (amp := url.rfind("&")) != -1 and url[amp + 1 : -1].isalpha():
            # A trailing entity-like `&amp;` is punctuation in GFM, not part of the address.
            url = url[:amp]
        else:
            break
    return url


def _text_token(content: str, level: int) -> Token:
    return Token("text", "", 0, level=level, content=content)


def _render_fence(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    token = tokens[idx]
    info = unescapeAll(token.info).strip()
    language = info.split(maxsplit=1)[0] if info else ""
    return _code_block_html(token.content, language)


def _render_code_block(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    return _code_block_html(tokens[idx].content, "")


def _render_image(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # An <img> loads as soon as the message is shown, so a prompt-injected answer could leak
    # the conversation through the image URL's query string. A link needs a click instead.
    token = tokens[idx]
    src = str(token.attrGet("src") or "")
    alt = renderer.renderInlineAsText(token.children or [], options, env) or src
    title = token.attrGet("title")
    title_attr = f' title="{escapeHtml(str(title))}"' if title else ""
    return f'<a href="{escapeHtml(src)}"{title_attr}>{escapeHtml(alt)}</a>'


def _code_block_html(code: str, language: str) -> str:
    lexer = _lexer_for(language) if len(code) <= MAX_HIGHLIGHT_CHARS else None
    body = highlight(code, lexer, _formatter()) if lexer else escapeHtml(code)
    label = escapeHtml(language[:MAX_LANGUAGE_CHARS]) if language else "text"
    return (
        '<div class="code-block"><div class="code-block-header">'
        f'<span class="code-block-lang">{label}</span>{_COPY_BUTTON}</div>'
        f"<pre><code>{body}</code></pre></div>\n"
    )


@functools.lru_cache(maxsize=128)
def _lexer_for(language: str) -> Lexer | None:
    # Only exact aliases of bundled lexers: no content sniffing, and no plugin entry-point scan
    # (which is what Pygments does on a miss) for every unknown word in a fence.
    if not language or len(language) > MAX_LANGUAGE_CHARS:
        return None
    lexer_name = _lexer_names_by_alias().get(language.lower())
    if lexer_name is None:
        return None
    lexer_class = find_lexer_class(lexer_name)
    return lexer_class() if lexer_class is not None else None


@functools.cache
def _lexer_names_by_alias() -> dict[str, str]:
    return {
        alias: name
        for name, aliases, _filenames, _mimetypes in get_all_lexers(plugins=False)
        for alias in aliases
    }


@functools.cache
def _formatter() -> HtmlFormatter[str]:
    return HtmlFormatter(nowrap=True, classprefix=HIGHLIGHT_CLASS_PREFIX)
