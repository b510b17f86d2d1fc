"""Record the process generating an answer (`Message.generator`).

Existing rows keep NULL: which process wrote them is not known, and a `streaming` one is then
judged by its heartbeat alone. The default (this process's id) is set on the model only; the
database has none.
"""

from django.db import migrations, models

import vero.lifecycle


class Migration(migrations.Migration):
    dependencies = [
        ("chats", "0002_message_branch_index_drop"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="generator",
            field=models.UUIDField(blank=True, editable=False, null=True),
        ),
        migrations.AlterField(
            model_name="message",
            name="generator",
            field=models.UUIDField(
                blank=True, default=vero.lifecycle.process_id, editable=False, null=True
            ),
        ),
    ]
