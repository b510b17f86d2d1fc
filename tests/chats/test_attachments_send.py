"""Sending files to models (docs/attachments.md, "Sending"): every path checks the files before
anything is spent or written, the question refers to its attachments, and the generation task
sends them to the provider as OpenAI content parts, on both engines.

Through the real path (HTTP posts as the page makes them, the generation loop, the fake
provider over real HTTP, the database, files in Django's default storage under a temporary
folder).
"""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core.files.storage import default_storage
from django.test import Client

from accounts.models import User
from chats.context_selectors import AUDIO_SECOND_TOKENS, PDF_PAGE_TOKENS, file_tokens, image_tokens
from chats.models import Attachment, Chat, Message, MessageAttachment
from chats.turn_services import Outgoing, answer_regenerate, answer_retry, message_edit, turn_send
from chats.worker import TITLE_PROMPT
from models_registry.calls import ENGINE_LITELLM, ENGINE_OPENAI_COMPATIBLE, KIND_ENGINE, Engine
from models_registry.models import Provider
from models_registry.services import provider_key_set
from ratelimit.selectors import ratelimit_status
from tests.chats.attachment_send_support import (
    ALL_KINDS,
    TEXT_MODEL_ID,
    image_of,
    model_reads,
    pdf_bytes,
    pdf_of,
    png_bytes,
    text_only_model_register,
    wav_bytes,
    wav_of,
)
from tests.chats.helpers import send, wait_for_answer
from tests.fake_provider import FakeProvider, RecordedRequest, Script
from vero.errors import VeroError, http_status

pytestmark = pytest.mark.django_db(transaction=True)

SYSTEM = {"role": "system", "content": "The user's name is Alice."}


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def vision_model(fake_model: str) -> str:
    """The fake model, reading images, documents and audio, with a key (LiteLLM wants one)."""
    provider_key_set(provider=Provider.objects.get(slug="fake-provider"), api_key="sk-test")
    model_reads(fake_model, ALL_KINDS)
    return fake_model


@pytest.fixture
def text_model(vision_model: str) -> str:
    return text_only_model_register()


@pytest.fixture(params=[ENGINE_OPENAI_COMPATIBLE, ENGINE_LITELLM])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setitem(KIND_ENGINE, "custom", request.param)
    return request.param


def _answer_requests(fake: FakeProvider) -> list[RecordedRequest]:
    return [
        request
        for request in fake.chat_requests
        if not (request.messages and request.messages[0].get("content") == TITLE_PROMPT)
    ]


def _ids(*attachments: Attachment) -> list[str]:
    return [str(attachment.id) for attachment in attachments]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _sent(
    alice: User, model: str, text: str, *files: Attachment, chat: Chat | None = None
) -> tuple[Message, Message]:
    sent = turn_send(
        actor=alice, actor_ensure=lambda: alice, chat=chat,
        outgoing=Outgoing(text, model, attachment_ids=tuple(a.id for a in files)),
    )  # fmt: skip
    return sent.turn.question, wait_for_answer(sent.turn.answer.id, timeout=60)


def _nothing_spent_or_written(alice: User, before: int, messages: int = 0) -> None:
    assert ratelimit_status(user=alice).remaining == before
    assert Message.objects.count() == messages


# -- what the provider receives -----------------------------------------------------------------


def test_an_image_a_pdf_and_audio_reach_the_model_as_openai_content_parts_on_both_engines(
    alice: User, alice_client: Client, vision_model: str, fake_llm: FakeProvider, engine: Engine
) -> None:
    image, pdf, audio = image_of(alice), pdf_of(alice), wav_of(alice)

    response = send(alice_client, "What are these?", vision_model,
                    attachments=_ids(image, pdf, audio))  # fmt: skip

    assert response.status_code == 302, response.content
    answer = wait_for_answer(Message.objects.get(role="assistant").id, timeout=60)
    assert answer.status == "complete", answer.error
    (request,) = _answer_requests(fake_llm)
    assert request.messages == [
        SYSTEM,
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What are these?"},
                {"type": "image_url",
                 "image_url": {"url": f"data:image/png;base64,{_b64(png_bytes())}"}},
                {"type": "file", "file": {
                    "filename": "hello.pdf",
                    "file_data": f"data:application/pdf;base64,{_b64(pdf_bytes())}"}},
                {"type": "input_audio",
                 "input_audio": {"data": _b64(wav_bytes()), "format": "wav"}},
            ],
        },
    ]  # fmt: skip


def test_a_later_turn_sends_the_earlier_questions_files_again(
    alice: User, vision_model: str, fake_llm: FakeProvider
) -> None:
    image = image_of(alice)
    question, _answer = _sent(alice, vision_model, "Look.", image)

    _sent(alice, vision_model, "And now?", chat=question.chat)

    later = _answer_requests(fake_llm)[-1]
    assert later.messages[1]["content"][1]["type"] == "image_url"
    assert later.messages[-1] == {"role": "user", "content": "And now?"}


def test_a_file_gone_from_storage_fails_the_answer_with_a_clear_error(
    alice: User, vision_model: str, fake_llm: FakeProvider
) -> None:
    image = image_of(alice, name="lost.png")
    default_storage.delete(str(image.file.name))

    _question, answer = _sent(alice, vision_model, "What is it?", image)

    assert answer.status == Message.Status.ERROR
    assert answer.error is not None and "'lost.png' is no longer available" in answer.error
    assert _answer_requests(fake_llm) == []


# -- what the question keeps --------------------------------------------------------------------


def test_the_question_refers_to_its_attachments_and_they_are_marked_sent(
    alice: User, vision_model: str
) -> None:
    image, pdf = image_of(alice), pdf_of(alice)

    question, _answer = _sent(alice, vision_model, "Both?", image, pdf)

    question.refresh_from_db()
    assert question.parts == [
        {"type": "text", "text": "Both?"},
        {"type": "file", "attachment_id": str(image.id), "name": "red.png", "kind": "image",
         "content_type": "image/png", "size": image.size, "width": 4, "height": 3},
        {"type": "file", "attachment_id": str(pdf.id), "name": "hello.pdf", "kind": "file",
         "content_type": "application/pdf", "size": pdf.size, "pages": 1},
    ]  # fmt: skip
    linked = MessageAttachment.objects.filter(message=question)
    assert sorted(str(link.attachment_id) for link in linked) == sorted(_ids(image, pdf))
    assert all(row.first_sent_at is not None for row in Attachment.objects.all())


def test_an_edit_into_a_new_version_keeps_the_files_and_adds_new_ones(
    alice: User, alice_client: Client, vision_model: str
) -> None:
    image, audio = image_of(alice), wav_of(alice)
    question, _answer = _sent(alice, vision_model, "Look.", image)

    response = alice_client.post(
        f"/c/{question.chat_id}/m/{question.id}/edit",
        {"text": "Look again.", "mode": "version", "model": vision_model,
         "attachments": _ids(audio)},
    )  # fmt: skip

    assert response.status_code in (200, 302), response.content
    version = Message.objects.filter(role="user").exclude(id=question.id).get()
    assert [part.get("attachment_id") for part in version.parts] == [None, *_ids(image, audio)]
    linked = MessageAttachment.objects.filter(message=version).values_list("attachment", flat=True)
    assert sorted(map(str, linked)) == sorted(_ids(image, audio))


def test_a_fork_refers_to_the_same_attachments_never_copies_them(
    alice: User, alice_client: Client, vision_model: str
) -> None:
    image = image_of(alice)
    question, answer = _sent(alice, vision_model, "Look.", image)

    response = alice_client.post(f"/c/{question.chat_id}/m/{answer.id}/fork")

    assert response.status_code in (200, 302, 204), response.content
    fork = Chat.objects.exclude(id=question.chat_id).get()
    copy = Message.objects.get(chat=fork, role="user")
    assert MessageAttachment.objects.get(message=copy).attachment_id == image.id
    assert Attachment.objects.count() == 1


# -- refusals before anything is spent or written -----------------------------------------------


def test_a_send_to_a_model_that_cannot_read_the_file_is_refused_before_anything(
    alice: User, alice_client: Client, text_model: str
) -> None:
    image = image_of(alice)
    before = ratelimit_status(user=alice).remaining

    response = send(alice_client, "What is it?", text_model, attachments=_ids(image))

    assert response.status_code == 400
    assert f"{TEXT_MODEL_ID} cannot read images" in response.content.decode()
    _nothing_spent_or_written(alice, before)
    assert Chat.objects.count() == 0 and MessageAttachment.objects.count() == 0


def test_another_users_attachment_is_not_found(
    alice: User, bob: User, alice_client: Client, vision_model: str
) -> None:
    bobs = image_of(bob)
    before = ratelimit_status(user=alice).remaining

    response = send(alice_client, "Whose?", vision_model, attachments=_ids(bobs))

    assert response.status_code == 404
    _nothing_spent_or_written(alice, before)


def test_a_guest_without_a_row_sending_an_attachment_creates_no_guest(
    alice: User, vision_model: str
) -> None:
    users = User.objects.count()

    response = send(Client(), "Mine?", vision_model, attachments=_ids(image_of(alice)))

    assert response.status_code == 404
    assert User.objects.count() == users and Message.objects.count() == 0


def test_too_many_files_or_too_many_bytes_are_refused(
    alice: User, alice_client: Client, vision_model: str, settings: Any
) -> None:
    files = [image_of(alice, name=f"{n}.png", width=n + 1) for n in range(3)]
    before = ratelimit_status(user=alice).remaining
    settings.ATTACHMENTS_PER_MESSAGE = 2

    too_many = send(alice_client, "All?", vision_model, attachments=_ids(*files))

    settings.ATTACHMENTS_PER_MESSAGE = 10
    settings.ATTACHMENT_MESSAGE_MAX_BYTES = files[0].size + files[1].size - 1
    too_large = send(alice_client, "Two?", vision_model, attachments=_ids(*files[:2]))

    assert too_many.status_code == 400 and "at most 2 files" in too_many.content.decode()
    assert too_large.status_code == 400 and "may total at most" in too_large.content.decode()
    _nothing_spent_or_written(alice, before)


def test_an_edit_for_a_model_that_cannot_read_the_question_is_refused_before_anything(
    alice: User, alice_client: Client, vision_model: str, text_model: str
) -> None:
    question, _answer = _sent(alice, vision_model, "Look.", image_of(alice))
    before = ratelimit_status(user=alice).remaining

    for mode in ("version", "fork"):
        response = alice_client.post(
            f"/c/{question.chat_id}/m/{question.id}/edit",
            {"text": "Look again.", "mode": mode, "model": text_model},
        )
        assert response.status_code == 400, (mode, response.content)
        assert "cannot read images" in response.content.decode()

    _nothing_spent_or_written(alice, before, messages=2)
    assert Chat.objects.count() == 1


def test_an_edit_of_a_later_question_checks_the_earlier_turns_files(
    alice: User, vision_model: str, text_model: str
) -> None:
    first, _ = _sent(alice, vision_model, "Look.", image_of(alice))
    second, _ = _sent(alice, vision_model, "Plain text.", chat=first.chat)
    before = ratelimit_status(user=alice).remaining

    with pytest.raises(VeroError) as refused:
        message_edit(user=alice, chat=first.chat, message=second, text="Plain again.",
                     mode="version", model_id=text_model)  # fmt: skip

    assert http_status(refused.value) == 400
    _nothing_spent_or_written(alice, before, messages=4)


def test_regenerate_with_a_model_that_cannot_read_the_route_is_refused_before_anything(
    alice: User, vision_model: str, text_model: str
) -> None:
    question, answer = _sent(alice, vision_model, "Look.", image_of(alice))
    before = ratelimit_status(user=alice).remaining

    with pytest.raises(VeroError) as refused:
        answer_regenerate(user=alice, chat=question.chat, message=answer, model_id=text_model)

    assert http_status(refused.value) == 400
    assert f"{TEXT_MODEL_ID} cannot read images" in refused.value.message
    _nothing_spent_or_written(alice, before, messages=2)
    again = answer_regenerate(user=alice, chat=question.chat, message=answer)  # its own model
    assert again.answer is not None
    wait_for_answer(again.answer.id, timeout=60)


def test_retry_of_a_model_that_no_longer_reads_the_route_is_refused_before_anything(
    alice: User, vision_model: str, fake_llm: FakeProvider
) -> None:
    fake_llm.enqueue(Script(text=["x"], error_after=0))
    question, failed = _sent(alice, vision_model, "Look.", image_of(alice))
    assert failed.status == Message.Status.ERROR
    model_reads(vision_model, ["text"])  # an admin changed what the model reads
    before = ratelimit_status(user=alice).remaining

    with pytest.raises(VeroError) as refused:
        answer_retry(user=alice, chat=question.chat, message=failed)

    assert http_status(refused.value) == 400
    _nothing_spent_or_written(alice, before, messages=2)


def test_a_model_that_cannot_read_an_earlier_turns_file_reads_a_line_saying_so(
    alice: User, vision_model: str, text_model: str, fake_llm: FakeProvider
) -> None:
    question, _answer = _sent(alice, vision_model, "Look.", image_of(alice))

    _sent(alice, text_model, "Thanks.", chat=question.chat)

    later = _answer_requests(fake_llm)[-1]
    assert later.messages[1]["content"] == [
        {"type": "text", "text": "Look."},
        {"type": "text", "text": "[red.png: this model cannot read images]"},
    ]


def test_an_attachment_id_that_is_not_one_is_a_form_error(
    alice: User, alice_client: Client, vision_model: str
) -> None:
    response = send(alice_client, "Hm", vision_model, attachments=["not-an-id", str(uuid.uuid4())])

    assert response.status_code == 400
    assert Message.objects.count() == 0


# -- the context budget -------------------------------------------------------------------------


def test_the_budget_counts_images_by_tiles_pdfs_by_pages_and_audio_by_seconds() -> None:
    assert image_tokens(1024, 1024) == 85 + 170 * 4  # 768 x 768: 2 x 2 tiles
    assert image_tokens(2048, 4096) == 85 + 170 * 6  # 1024 x 2048, then 768 x 1536: 2 x 3
    assert image_tokens(4, 3) == 85 + 170
    assert file_tokens({"kind": "file", "pages": 3}) == 3 * PDF_PAGE_TOKENS
    assert file_tokens({"kind": "audio", "duration_seconds": 10}) == 10 * AUDIO_SECOND_TOKENS


# -- the cache's sync ---------------------------------------------------------------------------


def test_the_sync_carries_a_questions_file_metadata_and_never_its_bytes(
    alice: User, alice_client: Client, vision_model: str
) -> None:
    image = image_of(alice)
    question, _answer = _sent(alice, vision_model, "Look.", image)

    response = alice_client.post(
        "/api/cache/sync", orjson.dumps({"last_synced_at": None}), content_type="application/json"
    )

    assert response.status_code == 200, response.content
    (chat,) = orjson.loads(response.content)["upserts"]
    sent = {message["id"]: message for message in chat["messages"]}[str(question.id)]
    assert sent["files"] == [
        {"attachment_id": str(image.id), "name": "red.png", "kind": "image",
         "content_type": "image/png", "size": image.size},
    ]  # fmt: skip
    assert _b64(png_bytes()) not in response.content.decode()
