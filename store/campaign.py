"""`CampaignStore`: the one door to a campaign's state.

Every method runs in its own transaction (`with Session.begin()`), so each multi-row change —
a pool, a batch of acquisitions, a job's result with its state change — lands whole or not at
all. Creating a campaign is atomic too: an SQLite campaign is written to a temporary file and
linked into place only when complete, so no half-written campaign ever sits at the target path.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, null, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from alloop.store import convert, db, jobs
from alloop.store import integrity as integ
from alloop.store import models as m
from alloop.store import records as r
from alloop.store.enums import JobState, LabelStatus
from alloop.store.errors import (
    CampaignExistsError,
    CheckpointCorruptError,
    DuplicateResultError,
    NotACampaignError,
    StoreError,
    UnknownRecordError,
)
from alloop.store.faults import faults_as_store_errors, refuse_read_only
from alloop.store.lock import FileLock, remove_stale_temp_files, temp_path_for
from alloop.store.pglock import PgAdvisoryLock
from alloop.store.structures import atoms_from_json, atoms_to_json, content_hash, text_hash


def alloop_version() -> str:
    try:
        return version("alloop")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0+unknown"


class CampaignStore:
    """Read and write one campaign. Open with `create` or `open`; close with `close` or `with`."""

    def __init__(self, target: db.Target, engine: Engine, lock: FileLock | PgAdvisoryLock | None):
        self.target = target
        self._engine = engine
        self._lock = lock
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    # ---------------------------------------------------------------- opening and closing
    @classmethod
    def create(
        cls,
        target: str | Path,
        *,
        name: str,
        config: dict[str, Any],
        seed: int,
        surfaces: Sequence[r.NewSurface],
        adsorbates: Sequence[r.NewAdsorbate],
        pairs: Sequence[tuple[str, str]] | None = None,
    ) -> CampaignStore:
        """Create a campaign with its pool (all surface x adsorbate pairs unless `pairs` given)
        and return it opened for writing (locked)."""
        tgt = db.resolve_target(target)
        if tgt.path is None:
            engine = db.make_engine(tgt)
            lock = PgAdvisoryLock(engine)
            lock.acquire()
            with engine.begin() as conn:
                if db.current_revision_on(conn) is not None:
                    lock.release()
                    raise CampaignExistsError(f"{tgt.display} already holds a campaign")
                _populate(conn, name, config, seed, surfaces, adsorbates, pairs)
            return cls(tgt, engine, lock)

        final = tgt.path
        if final.exists():
            raise CampaignExistsError(f"{final} exists already; choose another path or remove it")
        if not final.parent.is_dir():
            raise StoreError(f"cannot create {final}: directory {final.parent} does not exist")
        refuse_read_only(final)
        remove_stale_temp_files(final)
        tmp = temp_path_for(final)
        _remove_sqlite_files(tmp)
        try:
            with faults_as_store_errors(str(final)):
                tmp_engine = db.make_engine(db.resolve_target(tmp))
                try:
                    with tmp_engine.begin() as conn:
                        _populate(conn, name, config, seed, surfaces, adsorbates, pairs)
                finally:
                    tmp_engine.dispose()  # last connection closes: WAL checkpointed into the file
            os.link(tmp, final)  # refuses to overwrite, unlike rename
        except FileExistsError as exc:
            raise CampaignExistsError(f"{final} appeared while creating; not overwritten") from exc
        finally:
            _remove_sqlite_files(tmp)
        return cls.open(final, write=True)

    @classmethod
    def open(cls, target: str | Path, *, write: bool = False) -> CampaignStore:
        """Open an existing campaign; `write=True` takes the campaign lock and refuses a file that
        fails SQLite's quick integrity check, before this session writes anything."""
        tgt = db.resolve_target(target)
        if tgt.path is not None:
            db.preflight_sqlite(tgt.path)
            if write:
                refuse_read_only(tgt.path)
        lock: FileLock | PgAdvisoryLock | None = None
        engine = db.make_engine(tgt, readonly=not write)
        try:
            with faults_as_store_errors(tgt.display):
                found = db.current_revision(engine)
                db.check_revision(found, tgt.display)
                if write:
                    lock = FileLock(tgt.path) if tgt.path is not None else PgAdvisoryLock(engine)
                    lock.acquire()
                    if tgt.path is not None:
                        remove_stale_temp_files(tgt.path)
                        integ.refuse_damaged(engine, tgt.display)
                    if found != db.head_revision():
                        with engine.begin() as conn:
                            db.migrate(conn)
                elif found != db.head_revision():
                    raise StoreError(
                        f"{tgt.display} uses an older schema ({found}); open it once for writing "
                        "(e.g. `alloop resume`) to migrate it"
                    )
                store = cls(tgt, engine, lock)
                store.campaign()  # a schema with no campaign row is not a campaign
        except BaseException:
            if lock is not None:
                lock.release()
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
        self._engine.dispose()

    def __enter__(self) -> CampaignStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[Session]:
        with faults_as_store_errors(self.target.display), self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def _read(self) -> Iterator[Session]:
        with faults_as_store_errors(self.target.display), self._sessions() as session:
            yield session

    # ---------------------------------------------------------------- campaign and pool
    def campaign(self) -> r.CampaignRecord:
        with self._read() as s:
            row = s.scalar(select(m.CampaignRow))
            if row is None:
                raise NotACampaignError(f"{self.target.display} holds no campaign")
            return convert.campaign(row)

    def update_config(self, config: dict[str, Any]) -> None:
        """Store a new resolved config (the caller has checked which fields may change)."""
        with self._tx() as s:
            row = s.scalar(select(m.CampaignRow))
            assert row is not None  # campaign() succeeded at open
            row.config = config
            s.add(m.EventRow(kind="config_updated", payload={"config": config}))

    def surfaces(self) -> list[r.SurfaceRecord]:
        with self._read() as s:
            return [
                convert.surface(x)
                for x in s.scalars(select(m.SurfaceRow).order_by(m.SurfaceRow.id))
            ]

    def adsorbates(self) -> list[r.AdsorbateRecord]:
        with self._read() as s:
            rows = s.scalars(select(m.AdsorbateRow).order_by(m.AdsorbateRow.id))
            return [convert.adsorbate(x) for x in rows]

    def surface_atoms(self, key: str) -> Any:
        """The clean slab of surface `key` as `ase.Atoms`."""
        with self._read() as s:
            text = s.scalar(select(m.SurfaceRow.structure).where(m.SurfaceRow.key == key))
        if text is None:
            raise UnknownRecordError(f"no surface {key!r} in this campaign")
        return atoms_from_json(text)

    def adsorbate_atoms(self, key: str) -> Any:
        """The adsorbate's structure as `ase.Atoms`, or None when it is known by SMILES only."""
        with self._read() as s:
            row = s.execute(
                select(m.AdsorbateRow.id, m.AdsorbateRow.structure).where(m.AdsorbateRow.key == key)
            ).first()
        if row is None:
            raise UnknownRecordError(f"no adsorbate {key!r} in this campaign")
        return atoms_from_json(row.structure) if row.structure else None

    def pairs(self) -> list[r.PairRecord]:
        with self._read() as s:
            return _pair_records(s, None)

    def pair(self, key: str) -> r.PairRecord:
        with self._read() as s:
            found = _pair_records(s, key)
        if not found:
            raise UnknownRecordError(f"no pair {key!r} in this campaign")
        return found[0]

    # ---------------------------------------------------------------- rounds
    def begin_round(self, index: int, state: str) -> r.RoundRecord:
        with self._tx() as s:
            if s.scalar(select(m.RoundRow).where(m.RoundRow.index == index)) is not None:
                raise StoreError(f"round {index} exists already")
            row = m.RoundRow(index=index, state=state, metrics={})
            s.add(row)
            s.add(m.EventRow(kind="round_started", round_index=index, payload={"state": state}))
            s.flush()
            return convert.round_(row)

    def set_round_state(
        self,
        index: int,
        state: str,
        *,
        metrics: dict[str, Any] | None = None,
        finished: bool = False,
    ) -> r.RoundRecord:
        """Move round `index` to `state`, merging `metrics` into its metrics JSON."""
        with self._tx() as s:
            row = _round_row(s, index)
            row.state = state
            if metrics:
                row.metrics = {**row.metrics, **metrics}
            if finished:
                row.finished_at = m.utcnow()
            s.add(m.EventRow(kind="round_state", round_index=index, payload={"state": state}))
            s.flush()
            return convert.round_(row)

    def rounds(self) -> list[r.RoundRecord]:
        with self._read() as s:
            return [
                convert.round_(x) for x in s.scalars(select(m.RoundRow).order_by(m.RoundRow.index))
            ]

    # ---------------------------------------------------------------- acquisitions
    def record_acquisitions(self, round_index: int, rows: Sequence[r.NewAcquisition]) -> None:
        with self._tx() as s:
            _add_acquisitions(s, _round_row(s, round_index), rows)

    def record_batch(
        self,
        round_index: int,
        acquisitions: Sequence[r.NewAcquisition],
        job_specs: Sequence[r.NewJob],
        state: str,
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> None:
        """A round's batch in one transaction: acquisitions, their PROPOSED jobs, the new round
        state and events. A crash leaves either all of it or none."""
        with self._tx() as s:
            rnd = _round_row(s, round_index)
            _add_acquisitions(s, rnd, acquisitions)
            jobs.propose(s, rnd.id, job_specs)
            rnd.state = state
            for kind, payload in (("round_state", {"state": state}),) + tuple(events):
                s.add(m.EventRow(kind=kind, round_index=round_index, payload=payload))
            try:
                s.flush()
            except IntegrityError as exc:
                raise StoreError(
                    f"round {round_index}: the batch repeats a pair or a rank ({exc.orig})"
                ) from exc

    def acquisitions(
        self,
        *,
        round_index: int | None = None,
        surface: str | None = None,
        adsorbate: str | None = None,
    ) -> list[r.AcquisitionRecord]:
        with self._read() as s:
            return _acquisition_records(s, round_index, surface, adsorbate)

    # ---------------------------------------------------------------- jobs and labels
    def propose_jobs(
        self,
        round_index: int | None,
        specs: Sequence[r.NewJob],
        events: Sequence[tuple[str, dict[str, Any]]] = (),
    ) -> list[r.JobRecord]:
        """PROPOSED jobs (a key that exists returns that job untouched) and `events` (logged
        against `round_index`), in one transaction."""
        with self._tx() as s:
            rnd_id = _round_row(s, round_index).id if round_index is not None else None
            rows = jobs.propose(s, rnd_id, specs)
            for kind, payload in events:
                s.add(m.EventRow(kind=kind, round_index=round_index, payload=payload))
            return [_job_record(s, x) for x in rows]

    def transition_job(self, key: str, to: JobState, error: str | None = None) -> r.JobRecord:
        with self._tx() as s:
            return _job_record(s, jobs.transition(s, key, to, error))

    def transition_jobs(self, keys: Sequence[str], to: JobState) -> None:
        """`transition_job` for many jobs, in one transaction (all or none)."""
        with self._tx() as s:
            jobs.transition_many(s, keys, to)

    def record_pass(
        self,
        starting: Sequence[str] = (),
        done: Sequence[tuple[str, r.NewLabel]] = (),
        failed: Sequence[tuple[str, str | None]] = (),
    ) -> None:
        """One pass of an executor, in one transaction (all or none): each ``(key, label)`` of
        `done` ingested exactly once as `complete_job` does, each ``(key, error)`` of `failed`
        turned FAILED with its error, and the SUBMITTED jobs `starting` turned RUNNING.

        Raises:
            DuplicateResultError: a job of `done` has a recorded result already (nothing of the
                pass is recorded).
        """
        try:
            with self._tx() as s:
                jobs.complete_many(s, done)
                for key, error in failed:
                    jobs.transition(s, key, JobState.FAILED, error)
                jobs.transition_many(s, starting, JobState.RUNNING)
        except IntegrityError as exc:  # a concurrent writer won the race
            raise DuplicateResultError(
                f"a job of {[k for k, _ in done]} already has a recorded result; refused"
            ) from exc

    def complete_job(self, key: str, label: r.NewLabel) -> r.LabelRecord:
        """Record a RUNNING job's result exactly once; a second one raises DuplicateResultError."""
        try:
            with self._tx() as s:
                row = jobs.complete(s, key, label)
                return convert.label(row, _pair_key(s, row.pair_id), key)
        except IntegrityError as exc:  # a concurrent writer won the race
            raise jobs.duplicate_result(key) from exc

    def jobs(self, state: JobState | None = None) -> list[r.JobRecord]:
        with self._read() as s:
            q = (
                select(m.JobRow, m.PairRow.key, m.RoundRow.index)
                .join(m.PairRow, m.JobRow.pair_id == m.PairRow.id)
                .outerjoin(m.RoundRow, m.JobRow.round_id == m.RoundRow.id)
                .order_by(m.JobRow.id)
            )
            if state is not None:
                q = q.where(m.JobRow.state == state.value)
            return [convert.job(job, pk, idx) for job, pk, idx in s.execute(q).all()]

    def add_label(self, pair_key: str, label: r.NewLabel) -> r.LabelRecord:
        """Record a label that no job produced (e.g. imported reference data)."""
        jobs.validate_label(label)
        with self._tx() as s:
            pair_id = _pair_ids(s, [pair_key])[pair_key]
            row = m.LabelRow(
                pair_id=pair_id,
                job_id=None,
                gmae_ev=label.gmae_ev,
                status=label.status,
                fidelity=label.fidelity,
                provenance=dict(label.provenance),
            )
            s.add(row)
            s.flush()
            return convert.label(row, pair_key, None)

    def labels(self, pair_key: str | None = None) -> list[r.LabelRecord]:
        with self._read() as s:
            q = (
                select(m.LabelRow, m.PairRow.key, m.JobRow.key)
                .join(m.PairRow, m.LabelRow.pair_id == m.PairRow.id)
                .outerjoin(m.JobRow, m.LabelRow.job_id == m.JobRow.id)
                .order_by(m.LabelRow.id)
            )
            if pair_key is not None:
                q = q.where(m.PairRow.key == pair_key)
            return [convert.label(lab, pk, jk) for lab, pk, jk in s.execute(q)]

    def label_summaries(self, *, sites: bool = False) -> list[r.LabelSummary]:
        """Every label without its provenance (which may hold whole structures), oldest first.
        With ``sites``, each carries the binding atoms its provenance names
        (``binding_surface_atoms``, read in the database; what is not a list of non-negative
        integers, from an edited file, reads as unknown)."""
        site: ColumnElement[Any] = (
            m.LabelRow.provenance["binding_surface_atoms"] if sites else null()
        )
        with self._read() as s:
            q = (
                select(m.LabelRow.pair_id, m.PairRow.key, m.LabelRow.gmae_ev, m.LabelRow.status,
                       m.LabelRow.fidelity, m.JobRow.key, site)
                .join(m.PairRow, m.LabelRow.pair_id == m.PairRow.id)
                .outerjoin(m.JobRow, m.LabelRow.job_id == m.JobRow.id)
                .order_by(m.LabelRow.id)
            )  # fmt: skip
            rows = s.execute(q).all()
        return [
            r.LabelSummary(pair_id, key, gmae, status, fidelity, job,
                           _binding_atoms(binding) if sites else None)
            for pair_id, key, gmae, status, fidelity, job, binding in rows
        ]  # fmt: skip

    # ---------------------------------------------------------------- checkpoints
    def save_checkpoint(
        self,
        round_index: int,
        member: int,
        blob: bytes,
        config: dict[str, Any],
        *,
        state: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> str:
        """Store one ensemble member's weights for a round; returns their sha256. With `state`,
        the round moves to it (merging `metrics`) in the same transaction, so a crash never
        keeps the checkpoint without the training metrics."""
        digest = hashlib.sha256(blob).hexdigest()
        with self._tx() as s:
            rnd = _round_row(s, round_index)
            s.add(
                m.CheckpointRow(
                    round_id=rnd.id, member=member, blob=blob, sha256=digest, config=config
                )
            )
            try:
                s.flush()
            except IntegrityError as exc:
                raise StoreError(
                    f"round {round_index} already has a checkpoint for member {member}"
                ) from exc
            if state is not None:
                rnd.state = state
                rnd.metrics = {**rnd.metrics, **(metrics or {})}
                s.add(m.EventRow(kind="round_state", round_index=round_index,
                                 payload={"state": state}))  # fmt: skip
        return digest

    def drop_checkpoints(self, round_index: int, reason: str) -> None:
        """Delete a round's checkpoints (derived state: a damaged one is retrained), logging
        a `checkpoint_dropped` event with `reason`."""
        with self._tx() as s:
            rnd = _round_row(s, round_index)
            for row in s.scalars(select(m.CheckpointRow).where(m.CheckpointRow.round_id == rnd.id)):
                s.delete(row)
            s.add(m.EventRow(kind="checkpoint_dropped", round_index=round_index,
                             payload={"reason": reason}))  # fmt: skip

    def checkpoints(self, round_index: int | None = None) -> list[r.CheckpointRecord]:
        """Checkpoints of `round_index`, or of the latest round that has any."""
        with self._read() as s:
            q = select(m.CheckpointRow, m.RoundRow.index).join(m.RoundRow)
            if round_index is None:
                latest = s.scalar(select(func.max(m.RoundRow.index)).join(m.CheckpointRow))
                if latest is None:
                    return []
                round_index = latest
            q = q.where(m.RoundRow.index == round_index).order_by(m.CheckpointRow.member)
            out = []
            for row, idx in s.execute(q):
                if hashlib.sha256(row.blob).hexdigest() != row.sha256:
                    raise CheckpointCorruptError(
                        f"checkpoint round {idx} member {row.member} is corrupt"
                    )
                out.append(
                    r.CheckpointRecord(idx, row.member, row.blob, row.sha256, dict(row.config))
                )
            return out

    # ---------------------------------------------------------------- events and status
    def log_event(self, kind: str, payload: dict[str, Any], round_index: int | None = None) -> None:
        with self._tx() as s:
            s.add(m.EventRow(kind=kind, round_index=round_index, payload=payload))

    def events(self, after_id: int = 0, limit: int | None = None) -> list[r.EventRecord]:
        with self._read() as s:
            q = select(m.EventRow).where(m.EventRow.id > after_id).order_by(m.EventRow.id)
            if limit is not None:
                q = q.limit(limit)
            return [convert.event(x) for x in s.scalars(q)]

    def status(self, n_best: int = 5) -> r.CampaignStatus:
        from alloop.store.summary import campaign_status

        with self._read() as s:
            return campaign_status(s, n_best)


# -------------------------------------------------------------------- helpers (module-private)
def _populate(
    conn: Any,
    name: str,
    config: dict[str, Any],
    seed: int,
    surfaces: Sequence[r.NewSurface],
    adsorbates: Sequence[r.NewAdsorbate],
    pairs: Sequence[tuple[str, str]] | None,
) -> None:
    db.migrate(conn)
    with Session(bind=conn) as s:
        s.add(m.CampaignRow(name=name, config=config, seed=seed, alloop_version=alloop_version()))
        surface_rows = {x.key: _surface_row(x) for x in surfaces}
        adsorbate_rows = {x.key: _adsorbate_row(x) for x in adsorbates}
        if len(surface_rows) != len(surfaces) or len(adsorbate_rows) != len(adsorbates):
            raise StoreError("the pool repeats a surface or adsorbate key")
        s.add_all([*surface_rows.values(), *adsorbate_rows.values()])
        try:
            s.flush()
        except IntegrityError as exc:
            raise StoreError(f"the pool repeats a structure under two keys ({exc.orig})") from exc
        wanted = (
            pairs if pairs is not None else [(a, b) for a in surface_rows for b in adsorbate_rows]
        )
        for skey, akey in wanted:
            if skey not in surface_rows or akey not in adsorbate_rows:
                raise StoreError(f"pair ({skey!r}, {akey!r}) names an unknown surface or adsorbate")
            s.add(
                m.PairRow(
                    key=pair_key(skey, akey),
                    surface_id=surface_rows[skey].id,
                    adsorbate_id=adsorbate_rows[akey].id,
                )
            )
        s.add(
            m.EventRow(
                kind="campaign_created",
                payload={
                    "name": name,
                    "n_surfaces": len(surfaces),
                    "n_adsorbates": len(adsorbates),
                    "n_pairs": len(wanted),
                },
            )
        )
        s.flush()
        s.commit()


def pair_key(surface_key: str, adsorbate_key: str) -> str:
    """The pair key shown to users: `surface|adsorbate`."""
    return f"{surface_key}|{adsorbate_key}"


def _surface_row(x: r.NewSurface) -> m.SurfaceRow:
    return m.SurfaceRow(
        key=x.key,
        structure=atoms_to_json(x.atoms),
        composition=x.atoms.get_chemical_formula(mode="hill"),
        miller=x.miller,
        source=x.source,
        content_hash=content_hash(x.atoms),
    )


def _adsorbate_row(x: r.NewAdsorbate) -> m.AdsorbateRow:
    if x.atoms is None and not x.smiles:
        raise StoreError(f"adsorbate {x.key!r} has neither a structure nor a SMILES")
    digest = (
        content_hash(x.atoms, x.smiles or "", x.name)
        if x.atoms is not None
        else text_hash("smiles", x.smiles or "", x.name)
    )
    return m.AdsorbateRow(
        key=x.key,
        name=x.name,
        smiles=x.smiles,
        structure=atoms_to_json(x.atoms) if x.atoms is not None else None,
        binding_atoms=list(x.binding_atoms),
        content_hash=digest,
    )


def _remove_sqlite_files(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def _round_row(s: Session, index: int) -> m.RoundRow:
    row = s.scalar(select(m.RoundRow).where(m.RoundRow.index == index))
    if row is None:
        raise UnknownRecordError(f"no round {index} in this campaign")
    return row


def _pair_ids(s: Session, keys: Sequence[str]) -> dict[str, int]:
    found = dict(
        s.execute(select(m.PairRow.key, m.PairRow.id).where(m.PairRow.key.in_(set(keys)))).all()
    )
    missing = [k for k in keys if k not in found]
    if missing:
        raise UnknownRecordError(f"unknown pair(s): {', '.join(missing[:5])}")
    return found


def _add_acquisitions(s: Session, rnd: m.RoundRow, rows: Sequence[r.NewAcquisition]) -> None:
    index = rnd.index  # read now: after a failed flush the row cannot be refreshed
    ids = _pair_ids(s, [a.pair_key for a in rows])
    s.add_all(
        m.AcquisitionRow(
            round_id=rnd.id, pair_id=ids[a.pair_key], rank=a.rank, score=a.score, mu_ev=a.mu_ev,
            sigma_ev=a.sigma_ev, acquisition=a.acquisition, reason=a.reason,
            believer_sigma_ev=a.believer_sigma_ev, value=a.value, ei_ev=a.ei_ev,
            threshold_ev=a.threshold_ev, cost=a.cost, fidelity=a.fidelity,
        )
        for a in rows
    )  # fmt: skip
    try:
        s.flush()
    except IntegrityError as exc:
        raise StoreError(
            f"round {index}: acquisitions repeat a pair or a rank ({exc.orig})"
        ) from exc


def _pair_key(s: Session, pair_id: int) -> str:
    return s.scalar(select(m.PairRow.key).where(m.PairRow.id == pair_id)) or ""


def _pair_records(s: Session, key: str | None) -> list[r.PairRecord]:
    sf, ad = aliased(m.SurfaceRow), aliased(m.AdsorbateRow)
    q = (
        select(m.PairRow.id, m.PairRow.key, sf.key, ad.key)
        .join(sf, m.PairRow.surface_id == sf.id)
        .join(ad, m.PairRow.adsorbate_id == ad.id)
        .order_by(m.PairRow.id)
    )
    if key is not None:
        q = q.where(m.PairRow.key == key)
    return [r.PairRecord(*row) for row in s.execute(q)]


def _acquisition_records(
    s: Session, round_index: int | None, surface: str | None, adsorbate: str | None
) -> list[r.AcquisitionRecord]:
    sf, ad = aliased(m.SurfaceRow), aliased(m.AdsorbateRow)
    q = (
        select(m.AcquisitionRow, m.RoundRow.index, m.PairRow.key, sf.key, ad.key)
        .join(m.RoundRow, m.AcquisitionRow.round_id == m.RoundRow.id)
        .join(m.PairRow, m.AcquisitionRow.pair_id == m.PairRow.id)
        .join(sf, m.PairRow.surface_id == sf.id)
        .join(ad, m.PairRow.adsorbate_id == ad.id)
        .order_by(m.RoundRow.index, m.AcquisitionRow.rank)
    )
    if round_index is not None:
        q = q.where(m.RoundRow.index == round_index)
    if surface is not None:
        q = q.where(sf.key == surface)
    if adsorbate is not None:
        q = q.where(ad.key == adsorbate)
    return [convert.acquisition(a, idx, pk, sk, ak) for a, idx, pk, sk, ak in s.execute(q).all()]


def _job_record(s: Session, row: m.JobRow) -> r.JobRecord:
    rnd = (
        s.scalar(select(m.RoundRow.index).where(m.RoundRow.id == row.round_id))
        if row.round_id
        else None
    )
    return convert.job(row, _pair_key(s, row.pair_id), rnd)


__all__ = ["CampaignStore", "LabelStatus", "pair_key"]


def _binding_atoms(value: Any) -> tuple[int, ...] | None:
    """A provenance's ``binding_surface_atoms`` as atom indices; None unless it is a list of
    non-negative integers (absent, null, or edited into something else)."""
    if not isinstance(value, list):
        return None
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value):
        return None
    return tuple(value)
