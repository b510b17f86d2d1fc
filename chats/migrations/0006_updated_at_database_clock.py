"""Stamp `updated_at` of chats and messages with the database's clock on every write.

The cache sync (docs/realtime.md) pages on these stamps, so every writer must use one clock,
whatever the process or host, and no write path may forget it: a row trigger sets the column
to `now()`, the writing transaction's time (the same stamp for all its rows, and the `at` of
the events it publishes). `vero.lib.db.stamps_kept` lets a loader keep its own stamps.
"""

from django.db import migrations

_FUNCTION = """
CREATE OR REPLACE FUNCTION vero_updated_at_stamp() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Loading rows with stamps of their own (tests, benches): vero.lib.db.stamps_kept.
    IF current_setting('vero.stamps', true) = 'kept' THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
"""

# The condition runs without calling the function, so a writer that already stamps `now()`
# (the fork's copy of a whole route) pays nothing per row; measured on 100,000 rows, a plain
# row trigger doubled the insert's time.
_TRIGGERS = """
CREATE TRIGGER chats_chat_updated_at BEFORE INSERT OR UPDATE ON chats_chat
    FOR EACH ROW WHEN (NEW.updated_at IS DISTINCT FROM now())
    EXECUTE FUNCTION vero_updated_at_stamp();
CREATE TRIGGER chats_message_updated_at BEFORE INSERT OR UPDATE ON chats_message
    FOR EACH ROW WHEN (NEW.updated_at IS DISTINCT FROM now())
    EXECUTE FUNCTION vero_updated_at_stamp();
"""

_DROP = """
DROP TRIGGER IF EXISTS chats_chat_updated_at ON chats_chat;
DROP TRIGGER IF EXISTS chats_message_updated_at ON chats_message;
DROP FUNCTION IF EXISTS vero_updated_at_stamp();
"""


class Migration(migrations.Migration):
    dependencies = [("chats", "0005_sync_tombstones")]

    operations = [migrations.RunSQL(_FUNCTION + _TRIGGERS, reverse_sql=_DROP)]
