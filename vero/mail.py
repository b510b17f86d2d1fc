"""Console mail that a person can read and copy links from.

Django's console backend prints a mail as it travels: a text line longer than 78 characters
(a password-reset link) goes out quoted-printable, cut by `=` soft breaks, with `=` itself
written `=3D`. Copied from the server output, such a link is broken. This backend prints the
headers and the decoded text, as a mail client shows it.
"""

from __future__ import annotations

from django.core.mail import EmailMessage
from django.core.mail.backends import console

_TRANSPORT_HEADERS = {"content-type", "content-transfer-encoding", "mime-version"}


class ConsoleEmailBackend(console.EmailBackend):
    def write_message(self, message: EmailMessage) -> None:
        mime = message.message()
        headers = [
            f"{name}: {value}"
            for name, value in mime.items()
            if name.lower() not in _TRANSPORT_HEADERS
        ]
        text_part = mime.get_body(preferencelist=("plain",))
        text = text_part.get_content() if text_part is not None else "(no plain-text part)\n"
        attachments = [
            f"[attachment: {part.get_filename() or 'unnamed'} ({part.get_content_type()})]\n"
            for part in mime.iter_attachments()
        ]
        self.stream.write("\n".join(headers) + "\n\n" + text + "".join(attachments))
        self.stream.write("-" * 79 + "\n")
