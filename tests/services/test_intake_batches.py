"""How fetched batches are cut: by count upstream, by bytes here, over-size mail costing only headers."""

from __future__ import annotations

from mailbot.adapters.ports import HEADER_LIMIT
from mailbot.services.intake_batches import fetch_cost, plan_batches

MB = 1024 * 1024


def test_a_batch_ends_before_the_mail_that_would_take_it_over_the_byte_limit() -> None:
    sizes = {1: 20 * MB, 2: 20 * MB, 3: 20 * MB, 4: 5 * MB}

    batches = plan_batches([1, 2, 3, 4], sizes, max_batch_bytes=50 * MB, max_message_bytes=25 * MB)

    assert batches == [[1, 2], [3, 4]]


def test_a_mail_larger_than_the_batch_limit_but_under_the_message_limit_goes_alone() -> None:
    sizes = {1: 1 * MB, 2: 40 * MB, 3: 1 * MB}

    batches = plan_batches([1, 2, 3], sizes, max_batch_bytes=30 * MB, max_message_bytes=50 * MB)

    assert batches == [[1], [2], [3]]


def test_mail_over_the_message_limit_costs_only_its_header_block() -> None:
    sizes = {uid: 86 * MB for uid in range(1, 51)}

    batches = plan_batches(list(sizes), sizes, max_batch_bytes=50 * MB, max_message_bytes=25 * MB)

    assert batches == [list(range(1, 51))]
    assert fetch_cost(86 * MB, 25 * MB) == HEADER_LIMIT
    assert fetch_cost(1000, 25 * MB) == 1000


def test_mail_that_vanished_before_its_size_was_known_is_left_out() -> None:
    batches = plan_batches([1, 2, 3], {1: 10, 3: 10}, max_batch_bytes=MB, max_message_bytes=MB)

    assert batches == [[1, 3]]


def test_nothing_to_fetch_plans_no_batch() -> None:
    assert plan_batches([], {}, max_batch_bytes=MB, max_message_bytes=MB) == []
