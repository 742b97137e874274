"""Stage transitions: for each pair of adjacent stages, the share of leads that moved on and
the median time it took, from the per-lead ``stage_N_at`` times.

A lead "reached" stage N when it first reached N or any later stage, so a lead that skipped
a stage moves through it in no time (the funnel is cumulative, as in the stage counts).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from signup_sync.analytics.groups import Dimension, dimension
from signup_sync.analytics.repository import CohortFilter
from signup_sync.analytics.schemas import (
    GroupBy,
    GroupTransitions,
    StageTransitions,
    Transition,
    Window,
)
from signup_sync.analytics.service import rate
from signup_sync.analytics.sql import dialect_of, percentiles, seconds_between
from signup_sync.analytics.time_to_convert import days
from signup_sync.db.models import Lead
from signup_sync.vocabulary import Stage

PAIRS = [(Stage(n), Stage(n + 1)) for n in range(int(Stage.LEAD), int(Stage.CONVERTED))]


def stage_at(stage: Stage) -> Any:
    return getattr(Lead, f"stage_{int(stage)}_at")


async def _by_group(
    session: AsyncSession, cohort: CohortFilter, dim: Dimension | None
) -> dict[Any, tuple[str | None, list[Transition]]]:
    """Each group's (or, without ``dim``, the whole cohort's) label and transitions."""
    dialect = dialect_of(session)
    key = dim.lead_key if dim is not None else None
    reached = [
        func.coalesce(func.sum(case((stage_at(s).is_not(None), 1), else_=0)), 0) for s in Stage
    ]
    count_stmt = select(*([key] if key is not None else []), *reached).where(*cohort.lead_clauses())
    if key is not None:
        count_stmt = count_stmt.group_by(key)
    counts: dict[Any, list[int]] = {}
    for row in (await session.execute(count_stmt)).all():
        values = list(row)
        grp = values.pop(0) if key is not None else None
        counts[grp] = [int(v or 0) for v in values]

    # One percentile query per pair: the medians of every group at once.
    medians: dict[Any, dict[Stage, float]] = {}
    labels: dict[Any, str | None] = {}
    for before, after in PAIRS:
        took = seconds_between(stage_at(after), stage_at(before), dialect)
        found = await percentiles(
            session,
            took,
            [*cohort.lead_clauses(), stage_at(after).is_not(None)],
            (50,),
            group=key,
            label=dim.lead_label if dim is not None else None,
        )
        for grp, p in found.items():
            medians.setdefault(grp, {})[before] = p.values[50]
            labels.setdefault(grp, p.label)

    out: dict[Any, tuple[str | None, list[Transition]]] = {}
    for grp, n in counts.items():
        out[grp] = (
            labels.get(grp),
            [
                Transition(
                    from_stage=int(before),
                    from_name=before.label,
                    to_stage=int(after),
                    to_name=after.label,
                    reached=n[int(before) - 1],
                    moved_on=n[int(after) - 1],
                    rate=rate(n[int(after) - 1], n[int(before) - 1]),
                    median_days=days(medians.get(grp, {}).get(before)),
                )
                for before, after in PAIRS
            ],
        )
    return out


async def stage_transitions(
    session: AsyncSession, cohort: CohortFilter, group_by: GroupBy | None = None
) -> StageTransitions:
    [(_, overall)] = (await _by_group(session, cohort, None)).values()
    groups: list[GroupTransitions] = []
    if group_by is not None:
        dim = dimension(group_by, dialect_of(session))
        for grp, (label, transitions) in (await _by_group(session, cohort, dim)).items():
            if transitions[0].reached:
                groups.append(GroupTransitions(group=grp, label=label, transitions=transitions))
        groups.sort(key=lambda g: (-g.transitions[0].reached, g.group is None, g.group or ""))
    return StageTransitions(
        transitions=overall,
        group_by=group_by,
        groups=groups,
        window=Window(start=cohort.start, end=cohort.end),
        filters=cohort.filters(),
    )
