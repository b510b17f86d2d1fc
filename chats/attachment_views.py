"""Upload and download of attachments (docs/attachments.md): JSON in, bytes out, owner only."""

from __future__ import annotations

import uuid
from typing import IO, Any, cast
from urllib.parse import unquote

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponseBase, JsonResponse
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from accounts.selectors import actor_get
from accounts.services import actor_ensure
from chats.attachment_services import attachment_get_for_user, attachment_upload
from chats.files import AttachmentRefused
from chats.models import Attachment
from vero.errors import VeroError, http_status
from vero.http import VeroRequest


def _attachment_json(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": str(attachment.id),
        "name": attachment.name,
        "kind": attachment.kind,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
        "pages": attachment.pages,
        "duration_seconds": attachment.duration_seconds,
        "url": reverse("attachment_download", args=[attachment.id]),
    }


def _filename(request: VeroRequest) -> str:
    raw = request.headers.get("X-Filename", "")
    try:
        name = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise AttachmentRefused("The file's name is not valid UTF-8.") from None
    if not name.strip():
        raise AttachmentRefused("The file's name is missing (X-Filename).")
    return name


@require_POST
def attachment_upload_view(request: VeroRequest) -> JsonResponse:
    try:
        attachment, created = attachment_upload(
            owner=actor_get(request),
            source=cast(IO[bytes], request),  # HttpRequest reads like a file
            name=_filename(request),
            owner_ensure=lambda: actor_ensure(request),
        )
    except VeroError as error:
        return JsonResponse({"error": error.message}, status=http_status(error))
    return JsonResponse(_attachment_json(attachment), status=201 if created else 200)


@require_GET
def attachment_download_view(request: VeroRequest, attachment_id: uuid.UUID) -> HttpResponseBase:
    try:
        attachment = attachment_get_for_user(user=actor_get(request), attachment_id=attachment_id)
    except Attachment.DoesNotExist:
        raise Http404("No such attachment.") from None
    response = FileResponse(
        default_storage.open(str(attachment.file.name), "rb"),
        content_type=attachment.content_type,
        as_attachment=False,
        filename=attachment.name,
    )
    response["Content-Length"] = str(attachment.size)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response
