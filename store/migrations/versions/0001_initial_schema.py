"""initial schema: every table of a campaign, and the append-only event log.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 07:03:34.935749
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


# The event log is append-only: the database itself refuses UPDATE and DELETE.
_SQLITE_TRIGGERS = [
    "CREATE TRIGGER event_no_update BEFORE UPDATE ON event "
    "BEGIN SELECT RAISE(ABORT, 'event log is append-only'); END",
    "CREATE TRIGGER event_no_delete BEFORE DELETE ON event "
    "BEGIN SELECT RAISE(ABORT, 'event log is append-only'); END",
]
_PG_TRIGGERS = [
    "CREATE FUNCTION alloop_event_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'event log is append-only'; END; $$ LANGUAGE plpgsql",
    "CREATE TRIGGER event_no_update BEFORE UPDATE OR DELETE ON event "
    "FOR EACH ROW EXECUTE FUNCTION alloop_event_append_only()",
]


def _install_event_triggers() -> None:
    dialect = op.get_bind().dialect.name
    statements = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _PG_TRIGGERS}.get(dialect, [])
    for statement in statements:
        op.execute(statement)


def upgrade() -> None:

    op.create_table(
        "adsorbate",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("smiles", sa.String(length=500), nullable=True),
        sa.Column("structure", sa.Text(), nullable=True),
        sa.Column("binding_atoms", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adsorbate")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_adsorbate_content_hash")),
        sa.UniqueConstraint("key", name=op.f("uq_adsorbate_key")),
    )
    with op.batch_alter_table("adsorbate", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_adsorbate_name"), ["name"], unique=False)

    op.create_table(
        "campaign",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("alloop_version", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign")),
        sa.UniqueConstraint("name", name=op.f("uq_campaign_name")),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=60), nullable=False),
        sa.Column("round_index", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event")),
    )
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_event_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_event_ts"), ["ts"], unique=False)

    op.create_table(
        "round",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=40), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round")),
        sa.UniqueConstraint("index", name=op.f("uq_round_index")),
    )
    op.create_table(
        "surface",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("structure", sa.Text(), nullable=False),
        sa.Column("composition", sa.String(length=200), nullable=False),
        sa.Column("miller", sa.String(length=40), nullable=True),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surface")),
        sa.UniqueConstraint("content_hash", name=op.f("uq_surface_content_hash")),
        sa.UniqueConstraint("key", name=op.f("uq_surface_key")),
    )
    with op.batch_alter_table("surface", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_surface_composition"), ["composition"], unique=False)

    op.create_table(
        "model_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("member", sa.Integer(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("member >= 0", name=op.f("ck_model_checkpoint_member")),
        sa.ForeignKeyConstraint(
            ["round_id"], ["round.id"], name=op.f("fk_model_checkpoint_round_id_round")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_checkpoint")),
        sa.UniqueConstraint("round_id", "member", name="round_member"),
    )
    with op.batch_alter_table("model_checkpoint", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_checkpoint_round_id"), ["round_id"], unique=False
        )

    op.create_table(
        "pair",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=420), nullable=False),
        sa.Column("surface_id", sa.Integer(), nullable=False),
        sa.Column("adsorbate_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["adsorbate_id"], ["adsorbate.id"], name=op.f("fk_pair_adsorbate_id_adsorbate")
        ),
        sa.ForeignKeyConstraint(
            ["surface_id"], ["surface.id"], name=op.f("fk_pair_surface_id_surface")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pair")),
        sa.UniqueConstraint("key", name=op.f("uq_pair_key")),
        sa.UniqueConstraint("surface_id", "adsorbate_id", name="surface_adsorbate"),
    )
    with op.batch_alter_table("pair", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pair_adsorbate_id"), ["adsorbate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_pair_surface_id"), ["surface_id"], unique=False)

    op.create_table(
        "acquisition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("mu_ev", sa.Float(), nullable=True),
        sa.Column("sigma_ev", sa.Float(), nullable=True),
        sa.Column("acquisition", sa.String(length=60), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.CheckConstraint("rank >= 0", name=op.f("ck_acquisition_rank")),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"], name=op.f("fk_acquisition_pair_id_pair")),
        sa.ForeignKeyConstraint(
            ["round_id"], ["round.id"], name=op.f("fk_acquisition_round_id_round")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_acquisition")),
        sa.UniqueConstraint("round_id", "pair_id", name="round_pair"),
        sa.UniqueConstraint("round_id", "rank", name="round_rank"),
    )
    with op.batch_alter_table("acquisition", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_acquisition_pair_id"), ["pair_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_acquisition_round_id"), ["round_id"], unique=False)

    op.create_table(
        "job",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("round_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "state IN ('PROPOSED', 'SUBMITTED', 'RUNNING', 'DONE', 'FAILED', 'ABANDONED')",
            name=op.f("ck_job_state"),
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_job_attempts")),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"], name=op.f("fk_job_pair_id_pair")),
        sa.ForeignKeyConstraint(["round_id"], ["round.id"], name=op.f("fk_job_round_id_round")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
        sa.UniqueConstraint("key", name=op.f("uq_job_key")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_pair_id"), ["pair_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_round_id"), ["round_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_job_state"), ["state"], unique=False)

    op.create_table(
        "label",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pair_id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("gmae_ev", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("fidelity", sa.String(length=30), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "fidelity IN ('replay', 'mlip', 'dft_single_point', 'dft_relax')",
            name=op.f("ck_label_fidelity"),
        ),
        sa.CheckConstraint(
            "status <> 'ok' OR gmae_ev IS NOT NULL", name=op.f("ck_label_ok_has_value")
        ),
        sa.CheckConstraint("status IN ('ok', 'anomalous', 'failed')", name=op.f("ck_label_status")),
        sa.ForeignKeyConstraint(["job_id"], ["job.id"], name=op.f("fk_label_job_id_job")),
        sa.ForeignKeyConstraint(["pair_id"], ["pair.id"], name=op.f("fk_label_pair_id_pair")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label")),
        sa.UniqueConstraint("job_id", name="one_label_per_job"),
    )
    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.create_index("ix_label_pair_fidelity", ["pair_id", "fidelity"], unique=False)

    _install_event_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS event_no_update ON event")
        op.execute("DROP FUNCTION IF EXISTS alloop_event_append_only()")

    with op.batch_alter_table("label", schema=None) as batch_op:
        batch_op.drop_index("ix_label_pair_fidelity")

    op.drop_table("label")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_state"))
        batch_op.drop_index(batch_op.f("ix_job_round_id"))
        batch_op.drop_index(batch_op.f("ix_job_pair_id"))

    op.drop_table("job")
    with op.batch_alter_table("acquisition", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_acquisition_round_id"))
        batch_op.drop_index(batch_op.f("ix_acquisition_pair_id"))

    op.drop_table("acquisition")
    with op.batch_alter_table("pair", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pair_surface_id"))
        batch_op.drop_index(batch_op.f("ix_pair_adsorbate_id"))

    op.drop_table("pair")
    with op.batch_alter_table("model_checkpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_checkpoint_round_id"))

    op.drop_table("model_checkpoint")
    with op.batch_alter_table("surface", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_surface_composition"))

    op.drop_table("surface")
    op.drop_table("round")
    with op.batch_alter_table("event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_event_ts"))
        batch_op.drop_index(batch_op.f("ix_event_kind"))

    op.drop_table("event")
    op.drop_table("campaign")
    with op.batch_alter_table("adsorbate", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_adsorbate_name"))

    op.drop_table("adsorbate")
