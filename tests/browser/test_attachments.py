"""The composer's attachments: pasted files preview and upload at once, what may be attached
follows the chosen model's input modalities, and a message's files show in the transcript."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from models_registry.models import Model, ModelProvider

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
