"""Ticket references: typed on keypads, so typos must be caught by the check digit."""

from __future__ import annotations

import itertools
from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st

from contact.reference import damm_digit, grouped, is_valid, new_reference, normalize

bodies = st.text(alphabet="0123456789", min_size=13, max_size=13)


def with_check(body: str) -> str:
    return body + damm_digit(body)


class TestReference:
    def test_shape_is_date_random_and_check_digit(self) -> None:
        ref = new_reference(datetime(2026, 11, 21, 9, 30))
        assert len(ref) == 14 and ref.isdigit()
        assert ref.startswith("261121")
        assert is_valid(ref)

    def test_references_are_not_sequential(self) -> None:
        now = datetime(2026, 11, 21, 9, 30)
        refs = [int(new_reference(now)[6:13]) for _ in range(200)]
        steps = {b - a for a, b in itertools.pairwise(refs)}
        assert len(set(refs)) > 190 and len(steps) > 150

    def test_grouped_for_reading_and_normalized_back(self) -> None:
        assert grouped("26112104821377") == "2611 2104 8213 77"
        assert normalize("2611 2104-8213 77") == "26112104821377"

    @given(bodies, st.integers(0, 13), st.integers(1, 9))
    def test_every_single_digit_error_is_caught(self, body: str, pos: int, delta: int) -> None:
        ref = with_check(body)
        wrong = ref[:pos] + str((int(ref[pos]) + delta) % 10) + ref[pos + 1 :]
        assert is_valid(ref)
        assert not is_valid(wrong)

    @given(bodies, st.integers(0, 12))
    def test_every_adjacent_transposition_is_caught(self, body: str, pos: int) -> None:
        ref = with_check(body)
        if ref[pos] == ref[pos + 1]:
            return  # swapping equal digits changes nothing
        swapped = ref[:pos] + ref[pos + 1] + ref[pos] + ref[pos + 2 :]
        assert not is_valid(swapped)

    def test_exhaustively_for_one_reference(self) -> None:
        ref = with_check("2611210482137")
        for pos in range(14):
            for d in "0123456789":
                if d != ref[pos]:
                    assert not is_valid(ref[:pos] + d + ref[pos + 1 :])

    def test_wrong_length_or_non_digits_are_invalid(self) -> None:
        assert not is_valid("2611210482137")
        assert not is_valid("2611210482137a")
        assert not is_valid("２６１１２１０４８２１３７７")
