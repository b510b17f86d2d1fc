"""Markdown rendering of chat messages: formatting, code blocks, and what the sanitizer lets out."""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

import pytest

from chats.markdown import MAX_INPUT_CHARS, SCAN_HEAVY_BUDGET, markdown_render

# Written out here rather than imported, so a widened allow-list in the module fails these tests.
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "p": set(), "br": set(), "hr": set(), "h1": set(), "h2": set(), "h3": set(), "h4": set(),
    "h5": set(), "h6": set(), "strong": set(), "em": set(), "del": set(), "s": set(),
    "code": set(), "pre": set(), "blockquote": set(), "table": set(), "thead": set(),
    "tbody": set(), "tr": set(),
    "span": {"class"}, "div": {"class"}, "ul": {"class"}, "ol": {"class", "start"},
    "li": {"class"}, "th": {"class"}, "td": {"class"},
    "a": {"href", "title", "target", "rel"},
    "input": {"type", "checked", "disabled"},
    "button": {"type", "class", "data-copy-code"},
}  # fmt: skip
SAFE_SCHEMES = ("http://", "https://", "mailto:")
WHITESPACE_AND_CONTROLS = re.compile(r"[\x00-\x20\x7f-\x9f\u200b-\u200f\u2028\u2029\ufeff]+")


class _Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def _elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    parser.close()
    return parser.elements


def _assert_safe(html: str) -> None:
    assert "<script" not in html.lower()
    for tag, attrs in _elements(html):
        assert tag in ALLOWED_ATTRIBUTES, f"unexpected <{tag}> in {html!r}"
        assert set(attrs) <= ALLOWED_ATTRIBUTES[tag], f"unexpected attribute on <{tag}>: {attrs}"
        if "href" in attrs:
            href = WHITESPACE_AND_CONTROLS.sub("", unescape(attrs["href"] or "")).lower()
            assert href.startswith(SAFE_SCHEMES), f"unsafe href {attrs['href']!r}"
        if tag == "a":
            assert attrs["rel"] == "nofollow noopener noreferrer"
        if tag == "input":
            assert attrs["type"] == "checkbox"
            assert "disabled" in attrs


def _links(html: str) -> list[dict[str, str | None]]:
    return [attrs for tag, attrs in _elements(html) if tag == "a"]


# Formatting


def test_it_renders_emphasis_headings_lists_and_quotes() -> None:
    html = markdown_render("# Title\n\n*soft* **loud** ~~gone~~\n\n- one\n- two\n\n> quoted")
    assert "<h1>Title</h1>" in html
    assert "<em>soft</em> <strong>loud</strong> <s>gone</s>" in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html
    assert "<blockquote>\n<p>quoted</p>\n</blockquote>" in html


def test_a_single_newline_is_a_line_break_and_a_blank_line_a_paragraph() -> None:
    html = markdown_render("Roses are red,\nviolets are blue.\n\nThe end.")
    assert "<p>Roses are red,<br>\nviolets are blue.</p>" in html
    assert "<p>The end.</p>" in html


def test_it_keeps_the_start_of_an_ordered_list() -> None:
    assert '<ol start="3">' in markdown_render("3. three\n4. four")


def test_it_shows_raw_html_as_text() -> None:
    html = markdown_render("Use <b>bold</b> or <br> here")
    assert "&lt;b&gt;bold&lt;/b&gt; or &lt;br&gt; here" in html
    assert "<b>" not in html


def test_it_renders_tables_with_alignment_as_classes() -> None:
    html = markdown_render("| left | mid | right |\n|:--|:-:|--:|\n| 1 | 2 | 3 |")
    assert '<th class="align-left">left</th>' in html
    assert '<th class="align-center">mid</th>' in html
    assert '<td class="align-right">3</td>' in html
    assert "style" not in html


def test_it_renders_task_lists_as_disabled_checkboxes() -> None:
    html = markdown_render("- [ ] todo\n- [x] done")
    checkboxes = [attrs for tag, attrs in _elements(html) if tag == "input"]
    assert [("checked" in attrs) for attrs in checkboxes] == [False, True]
    assert all(attrs["type"] == "checkbox" and "disabled" in attrs for attrs in checkboxes)
    assert '<ul class="contains-task-list">' in html
    _assert_safe(html)


def test_links_open_in_a_new_tab_without_referrer_or_ranking() -> None:
    [link] = _links(markdown_render("[docs](https://example.com/docs)"))
    assert link == {
        "href": "https://example.com/docs",
        "target": "_blank",
        "rel": "nofollow noopener noreferrer",
    }


def test_it_links_bare_web_addresses_without_trailing_punctuation() -> None:
    html = markdown_render("See https://example.com/a_(b)). Or www.example.org, maybe.")
    assert [link["href"] for link in _links(html)] == [
        "https://example.com/a_(b)",
        "http://www.example.org",
    ]
    assert "</a>). Or" in html


def test_it_leaves_addresses_inside_code_and_links_alone() -> None:
    html = markdown_render("`https://code.example` and [label](https://b.example)")
    assert [link["href"] for link in _links(html)] == ["https://b.example"]
    assert "<code>https://code.example</code>" in html


def test_it_renders_images_as_links_so_nothing_loads_by_itself() -> None:
    html = markdown_render('![a *diagram*](https://example.com/d.png "Diagram")')
    assert "<img" not in html
    [link] = _links(html)
    assert link["href"] == "https://example.com/d.png"
    assert link["title"] == "Diagram"
    assert ">a diagram</a>" in html


def test_an_image_without_alt_text_shows_its_address() -> None:
    html = markdown_render("![](https://example.com/d.png)")
    assert ">https://example.com/d.png</a>" in html


def test_it_drops_relative_link_targets() -> None:
    [link] = _links(markdown_render("[logout](/accounts/logout/)"))
    assert "href" not in link


# Code blocks


def test_it_highlights_a_known_language_with_classes() -> None:
    html = markdown_render('```python\nprint("<hi>")\n```')
    assert '<span class="hl-nb">print</span>' in html
    assert '<span class="hl-s2">"&lt;hi&gt;"</span>' in html
    assert "style" not in html
    _assert_safe(html)


def test_a_code_block_has_a_header_with_its_language_and_a_copy_button() -> None:
    html = markdown_render("```js\nlet x = 1;\n```")
    assert html.startswith(
        '<div class="code-block"><div class="code-block-header">'
        '<span class="code-block-lang">js</span>'
        '<button type="button" class="copy-code" data-copy-code="">Copy</button></div>'
        "<pre><code>"
    )


def test_an_unknown_language_is_shown_as_plain_escaped_code() -> None:
    html = markdown_render("```notalanguage\nif a < b: pass\n```")
    assert '<span class="code-block-lang">notalanguage</span>' in html
    assert "<pre><code>if a &lt; b: pass\n</code></pre>" in html
    assert "hl-" not in html


def test_a_fence_without_language_is_plain_and_labelled_text() -> None:
    html = markdown_render("```\nx = 1\n```")
    assert '<span class="code-block-lang">text</span>' in html
    assert "<pre><code>x = 1\n</code></pre>" in html


def test_an_indented_code_block_gets_the_same_header() -> None:
    html = markdown_render("    x = 1")
    assert 'class="copy-code"' in html
    assert "<pre><code>x = 1\n</code></pre>" in html


def test_the_language_is_looked_up_case_insensitively() -> None:
    assert "hl-k" in markdown_render("```Python\ndef f(): pass\n```")


# Sanitization

XSS_PAYLOADS = {
    "script_tag": "<script>alert(1)</script>",
    "script_tag_split": "<scr<script>ipt>alert(1)</script>",
    "img_onerror": "<img src=x onerror=alert(1)>",
    "svg_onload": "<svg onload=alert(1)><circle/></svg>",
    "javascript_link": "[x](javascript:alert(1))",
    "javascript_link_upper_case": "[x](JAVASCRIPT:alert(1))",
    "javascript_link_tab_entity": "[x](java&#x09;script:alert(1))",
    "javascript_link_decimal_entity": "[x](&#106;avascript:alert(1))",
    "javascript_link_colon_entity": "[x](javascript&colon;alert(1))",
    "javascript_link_angle_brackets": "[x](<javascript:alert(1)>)",
    "javascript_link_leading_space": "[x](  javascript:alert(1) )",
    "javascript_link_zero_width": "[x](java\u200bscript:alert(1))",
    "javascript_link_nul": "[x](\x00javascript:alert(1))",
    "javascript_image": "![x](javascript:alert(1))",
    "javascript_autolink": "<javascript:alert(1)>",
    "javascript_reference_link": "[x][evil]\n\n[evil]: javascript:alert(1)",
    "data_html_link": "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "data_png_image": "![x](data:image/png;base64,iVBORw0KGgo=)",
    "data_svg_image": "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "vbscript_link": "[x](vbscript:msgbox(1))",
    "file_link": "[x](file:///etc/passwd)",
    "protocol_relative_link": "[x](//evil.example/steal)",
    "backslash_relative_link": "[x](/\\evil.example/steal)",
    "link_title_double_quote": '[x](https://ok.example "a\\" onmouseover=\\"alert(1))',
    "link_title_single_quote": "[x](https://ok.example 'a\" onclick=\"alert(1)')",
    "autolink_with_quote": '<https://ok.example/" onclick="alert(1)>',
    "bare_url_with_quote": 'https://ok.example/"onmouseover="alert(1)',
    "bare_url_with_tag": "www.ok.example/<script>alert(1)</script>",
    "entity_encoded_script": "&lt;script&gt;alert(1)&lt;/script&gt;",
    "raw_anchor_javascript": '<a href="javascript:alert(1)">x</a>',
    "raw_anchor_entity_javascript": '<a href="&#x6A;avascript:alert(1)">x</a>',
    "iframe": '<iframe src="javascript:alert(1)"></iframe>',
    "object": '<object data="javascript:alert(1)"></object>',
    "embed": '<embed src="javascript:alert(1)">',
    "form": '<form action="javascript:alert(1)"><button>go</button></form>',
    "style_tag": "<style>body{background:url(javascript:alert(1))}</style>",
    "style_attribute": '<p style="background:url(javascript:alert(1))">x</p>',
    "meta_refresh": '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "base_href": '<base href="javascript:alert(1)//">',
    "fence_info_breaks_out": '```"><script>alert(1)</script>\ncode\n```',
    "fence_info_event_handler": "```python onmouseover=alert(1)\ncode\n```",
    "fence_info_quote_class": '```x" class="copy-code" onclick="alert(1)\ncode\n```',
    "emphasis_around_html": "*<img src=x onerror=alert(1)>* **<b onclick=alert(1)>x</b>**",
    "html_in_link_text": "[<img src=x onerror=alert(1)>](https://ok.example)",
    "html_in_table_cell": "| <script>alert(1)</script> | b |\n|---|---|\n| <svg onload=1> | d |",
    "html_in_task_item": '- [x] <input type="text" onfocus=alert(1) autofocus>',
    "math_mutation": "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "template_mutation": "<template><script>alert(1)</script></template>",
    "noscript_mutation": '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    "id_clobbering": '<form id="csrf"><input name="token" id="x"></form>',
    "html_comment": "<!-- <script>alert(1)</script> -->",
    "cdata": "<![CDATA[<script>alert(1)</script>]]>",
    "percent_encoded_scheme": "[x](%6A%61vascript:alert(1))",
}


@pytest.mark.parametrize("payload", XSS_PAYLOADS.values(), ids=XSS_PAYLOADS.keys())
def test_it_neutralises_the_xss_payload(payload: str) -> None:
    _assert_safe(markdown_render(payload))


@pytest.mark.parametrize("payload", XSS_PAYLOADS.values(), ids=XSS_PAYLOADS.keys())
def test_the_xss_payload_stays_inert_inside_a_longer_answer(payload: str) -> None:
    _assert_safe(markdown_render(f"Intro with **bold**.\n\n> {payload}\n\n- item {payload}\n"))


def test_it_escapes_the_fence_info_string_in_the_header() -> None:
    html = markdown_render('```"><b>x\ncode\n```')
    assert '<span class="code-block-lang">"&gt;&lt;b&gt;x</span>' in html


def test_raw_html_is_never_parsed_into_elements() -> None:
    html = markdown_render('<div class="code-block"><a href="https://ok.example">x</a></div>')
    assert _elements(html) == [("p", {})]


# Size and pathological input


def test_a_huge_message_falls_back_to_escaped_preformatted_text() -> None:
    text = "<b>**not bold**</b>\n" * (MAX_INPUT_CHARS // 20 + 1)
    html = markdown_render(text)
    assert html.startswith("<pre>&lt;b&gt;**not bold**&lt;/b&gt;\n")
    assert "<strong>" not in html
    assert _elements(html) == [("pre", {})]


def test_a_message_full_of_brackets_falls_back_to_escaped_text() -> None:
    html = markdown_render("[a](" * (SCAN_HEAVY_BUDGET["["] + 1))
    assert html.startswith("<pre>[a](")


@pytest.mark.parametrize(
    "text",
    [
        ">" * 10_000,
        "> " * 10_000 + "deep",
        "[" * 10_000,
        "![" * 10_000,
        "[" * 2_000 + "x" + "](y)" * 2_000,
        "*" * 5_000 + "a" + "*" * 5_000,
        "_a" * 5_000,
        "- " * 10_000 + "deep",
        "1. " * 10_000,
        "`" * 10_000,
        "<" * 10_000,
        "http:" * 10_000,
        "www." * 10_000,
        "a@" * 10_000,
        "&#" * 10_000,
        "|" * 10_000,
        "```\n" * 2_000,
    ],
    ids=lambda text: f"{text[:6]!r}x{len(text)}",
)
def test_pathological_input_renders_safely(text: str) -> None:
    _assert_safe(markdown_render(text))
