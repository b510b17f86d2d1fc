"""A chat's pins go with the chat in the database (ON DELETE CASCADE on archive_chatpin.chat_id).

chats deletes a chat with set-based SQL (`chats.services.chat_delete`), not Django's collector,
and knows nothing of pins (the archive sits below chats); Django's CASCADE alone would leave
the pins behind and the chat's delete would fail on the foreign key at commit. A migration of
its own: the initial one creates its foreign keys only after its last operation.
"""

from django.db import migrations

_PIN_CHAT_FK = """
DO $$
DECLARE constraint_name text;
BEGIN
    SELECT conname INTO constraint_name FROM pg_constraint
    WHERE conrelid = 'archive_chatpin'::regclass AND confrelid = 'chats_chat'::regclass
      AND contype = 'f';
    IF constraint_name IS NOT NULL THEN
        EXECUTE format('ALTER TABLE archive_chatpin DROP CONSTRAINT %I', constraint_name);
    END IF;
END
$$;
ALTER TABLE archive_chatpin ADD CONSTRAINT archive_chatpin_chat_id_fk FOREIGN KEY (chat_id)
    REFERENCES chats_chat (id) {on_delete} DEFERRABLE INITIALLY DEFERRED;
"""
_PIN_CHAT_CASCADE = _PIN_CHAT_FK.format(on_delete="ON DELETE CASCADE")
_PIN_CHAT_NO_CASCADE = _PIN_CHAT_FK.format(on_delete="")



class Migration(migrations.Migration):
    dependencies = [("archive", "0001_initial")]

    operations = [migrations.RunSQL(_PIN_CHAT_CASCADE, reverse_sql=_PIN_CHAT_NO_CASCADE)]
