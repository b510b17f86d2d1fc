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
from collections.abc import Sequence

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml, unescapeAll
from markdown_it.renderer import RendererHTML
from markdown_it.rules_core import StateCore
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from mdit_py_plugins.gfm_autolink import gfm_autolink_plugin
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
# A fence info string is free text; only something shaped like a language name is looked up.
MAX_LANGUAGE_CHARS = 32

HIGHLIGHT_CLASS_PREFIX = "hl-"
LINK_REL = "nofollow noopener noreferrer"

_ALIGNMENTS = ("left", "center", "right")

_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "span", "div", "a", "ul", "ol", "li", "input", "blockquote", "table", "thead", "tbody",
    "tr", "th", "td", "button",
}  # fmt: skip
# `class` is absent on purpose: nh3 checks it value by value through `_allowed_classes()`, and
# `type`/`disabled` on inputs are forced through `set_tag_attribute_values`.
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
    if len(text) > MAX_INPUT_CHARS:
        return f"<pre>{html.escape(text, quote=False)}</pre>"
    return _cleaner().clean(_parser().render(text))


@functools.cache
def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False, "maxNesting": MAX_NESTING},
    )
    md.enable(["table", "strikethrough"])
    # The GFM autolink extension is pure Python; markdown-it's own `linkify` would need
    # linkify-it-py, which we do not install.
    md.use(gfm_autolink_plugin)
    md.use(tasklists_plugin)
    md.core.ruler.push("table_alignment_as_class", _table_alignment_as_class)
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
