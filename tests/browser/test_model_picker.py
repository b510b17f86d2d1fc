"""The picker's capability icons are inline SVG that render without any emoji font."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from models_registry.models import Model


def test_the_chosen_models_capabilities_show_as_labelled_icons(page: Page, fake_model: str) -> None:
    Model.objects.filter(id=fake_model).update(supports_reasoning=True, input_modalities=["image"])

    page.goto("/")
    page.get_by_label("Model").select_option(fake_model)

    expect(page.get_by_role("img", name="Reasoning")).to_be_visible()
    expect(page.get_by_role("img", name="Reads images")).to_be_visible()
    expect(page.get_by_role("img", name="Tools")).to_be_hidden()
    box = page.get_by_role("img", name="Reasoning").bounding_box()
    assert box is not None and box["width"] > 8 and box["height"] > 8
