"""The composer's attachments: pasted files preview and upload at once, what may be attached
follows the chosen model's input modalities, and a message's files show in the transcript."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from chats.models import Message
from models_registry.models import Model, ModelProvider
from tests.fake_provider import FakeProvider, Script

# A file built in the page and pasted into the composer, as a clipboard holding it would.
PASTE_FILE = """async ([name, type]) => {
  let blob;
  if (type === "image/png") {
    const canvas = document.createElement("canvas");
    canvas.width = 8;
    canvas.height = 8;
    const context = canvas.getContext("2d");
    context.fillStyle = "#3b5bdb";
    context.fillRect(0, 0, 8, 8);
    blob = await new Promise((done) => canvas.toBlob(done, "image/png"));
  } else {
    blob = new Blob(["%PDF-1.4\\n%%EOF\\n"], { type });
  }
  const clipboard = new DataTransfer();
  clipboard.items.add(new File([blob], name, { type }));
  const text = document.querySelector("[data-composer-text]");
  const paste = new ClipboardEvent("paste", { clipboardData: clipboard, bubbles: true });
  text.dispatchEvent(paste);
}"""


def _vision_model(fake_model: str) -> str:
    Model.objects.filter(id=fake_model).update(input_modalities=["image"])
    return fake_model


def _text_model_add(fake_model: str) -> str:
    """A second model on the fake provider, which reads text only."""
    source = Model.objects.get(id=fake_model)
    plain = Model.objects.create(
        id="fake:text-model", creator=source.creator, display_name="Text Model",
        input_modalities=["text"],
    )  # fmt: skip
    route = ModelProvider.objects.get(model=source)
    ModelProvider.objects.create(
        model=plain, provider=route.provider, provider_model_id="text-model", is_default=True,
        price_input_per_million=1, price_output_per_million=2,
    )  # fmt: skip
    return plain.id


def test_the_attach_control_disappears_for_a_text_only_model(page: Page, fake_model: str) -> None:
    vision = _vision_model(fake_model)
    text_only = _text_model_add(fake_model)
    page.goto("/")
    attach = page.get_by_label("Attach images")

    page.get_by_label("Model").select_option(vision)
    expect(attach).to_be_attached()
    expect(page.locator("[data-attach-label]")).to_be_visible()
    assert "image/png" in (attach.get_attribute("accept") or "")
    page.get_by_label("Model").select_option(text_only)
    expect(page.locator("[data-attach-label]")).to_be_hidden()


def test_a_pasted_file_the_model_cannot_read_is_refused_before_any_upload(
    page: Page, fake_model: str
) -> None:
    _vision_model(fake_model)
    uploads: list[str] = []
    page.on(
        "request",
        lambda request: (
            uploads.append(request.url) if request.url.endswith("/attachments") else None
        ),
    )
    page.goto("/")
    page.get_by_label("Model").select_option(fake_model)

    page.evaluate(PASTE_FILE, ["notes.pdf", "application/pdf"])

    expect(page.get_by_role("alert").filter(has_text="cannot read notes.pdf")).to_be_visible()
    expect(page.locator("[data-attachment-chip]")).to_have_count(0)
    assert uploads == []


def test_a_pasted_image_previews_goes_to_a_vision_model_and_stays_in_the_transcript(
    page: Page, fake_model: str, fake_llm: FakeProvider
) -> None:
    vision = _vision_model(fake_model)
    fake_llm.enqueue(Script(text=["A blue square."]), Script(text=["A title"]))
    page.goto("/")
    page.get_by_label("Model").select_option(vision)

    page.evaluate(PASTE_FILE, ["square.png", "image/png"])

    chip = page.locator("[data-attachment-chip]")
    expect(chip.get_by_role("img", name="square.png")).to_be_visible()
    expect(chip).to_have_attribute("data-state", "done")
    page.get_by_label("Message").fill("What is this?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".message-assistant")).to_contain_text("A blue square.")
    expect(page.locator("[data-attachment-chip]")).to_have_count(0)
    contents = [request.json["messages"][-1]["content"] for request in fake_llm.chat_requests]
    parts = [part for content in contents if isinstance(content, list) for part in content]
    assert any(part.get("type") == "image_url" for part in parts)

    page.reload()
    thumbnail = page.locator(".message-user img.message-file-thumb")
    expect(thumbnail).to_have_attribute("alt", "square.png")
    expect(thumbnail).to_have_js_property("complete", True)
    assert thumbnail.evaluate("image => image.naturalWidth") == 8


def test_switching_to_a_text_only_model_with_an_image_attached_warns_and_blocks_sending(
    page: Page, fake_model: str
) -> None:
    vision = _vision_model(fake_model)
    text_only = _text_model_add(fake_model)
    page.goto("/")
    page.get_by_label("Model").select_option(vision)
    page.evaluate(PASTE_FILE, ["square.png", "image/png"])
    expect(page.locator("[data-attachment-chip]")).to_have_attribute("data-state", "done")
    page.get_by_label("Message").fill("What is this?")

    page.get_by_label("Model").select_option(text_only)

    expect(page.get_by_role("alert").filter(has_text="cannot read square.png")).to_be_visible()
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    page.get_by_role("button", name="Remove square.png").click()
    expect(page.get_by_role("alert").filter(has_text="cannot read")).to_be_hidden()
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert not Message.objects.exists()
