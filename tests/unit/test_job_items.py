"""The job-item state machine moves only along the edges of its table."""

from __future__ import annotations

import pytest

from rag.db.tables import ItemStatus, JobItemRow
from rag.job_items import TRANSITIONS, IllegalTransition, move

Q, P, E = ItemStatus.QUEUED, ItemStatus.PARSING, ItemStatus.EMBEDDING
DONE, FAILED, SKIPPED = ItemStatus.DONE, ItemStatus.FAILED, ItemStatus.SKIPPED


def test_a_document_goes_through_its_life() -> None:
    item = JobItemRow(job_id="j", document_id="d")
    for to in (Q, P, E, E, Q, P, E, DONE, Q, SKIPPED, Q, FAILED, Q):
        move(item, to)
        assert item.status is to


@pytest.mark.parametrize(
    ("start", "to"), [(Q, E), (Q, DONE), (DONE, E), (SKIPPED, FAILED), (FAILED, DONE)]
)
def test_an_edge_the_table_lacks_is_a_bug(start: ItemStatus, to: ItemStatus) -> None:
    item = JobItemRow(job_id="j", document_id="d", status=start)
    with pytest.raises(IllegalTransition, match=f"{start} -> {to}"):
        move(item, to)
    assert item.status is start


def test_every_state_can_be_queued_again() -> None:
    assert set(TRANSITIONS) == set(ItemStatus)
    assert all(Q in targets for targets in TRANSITIONS.values())
