"""ingestion guard: the erasure lock and the hash key read in one statement (PostgreSQL)

Ingestion takes the shared side of the erasure advisory lock, then reads the tombstones'
hash key. In one plain statement the read would use the snapshot taken before the lock was
granted, and miss a key created by the erasure it waited for; a VOLATILE PL/pgSQL function
takes a new snapshot for each query it runs, so its read comes after the lock. One round
trip instead of two on every ingestion. SQLite needs nothing (one writer at a time).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 07:00:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        CREATE FUNCTION signup_sync_ingestion_guard(lock_key bigint)
        RETURNS TABLE (secret varchar, fingerprint varchar)
        LANGUAGE plpgsql VOLATILE AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock_shared(lock_key);
            RETURN QUERY SELECT k.secret, k.fingerprint FROM privacy_hash_keys AS k
                WHERE k.id = 1;
        END
        $$
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION signup_sync_ingestion_guard(bigint)")
