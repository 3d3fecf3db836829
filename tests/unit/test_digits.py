"""One check for decimal numbers in text, shared by every layer that parses them."""

import pytest

from s4.digits import decimal
from s4.store.compressing.part_sizes import decode_part_sizes, encode_part_sizes


@pytest.mark.parametrize(("text", "value"), [("0", 0), ("42", 42), ("007", 7), ("9" * 18, 10**18 - 1)])
def test_ascii_digits_are_read(text, value):
    assert decimal(text) == value


@pytest.mark.parametrize("text", ["", "-1", "+1", " 1", "1.0", "1e3", "²", "\u0661", "\uff14", "9" * 19])
def test_anything_else_is_none_never_an_exception(text):
    assert decimal(text) is None


def test_the_bound_on_digits_is_the_caller_s():
    assert decimal("12345", max_digits=5) == 12345 and decimal("123456", max_digits=5) is None


def test_a_part_sizes_value_with_a_digit_int_refuses_is_malformed_not_an_error():
    """It raised ValueError before: '²'.isdigit() is true, int('²') fails."""
    assert decode_part_sizes(encode_part_sizes([8, 8, 3])) == (8, 8, 3)
    assert decode_part_sizes("8x2,²") is None
    assert decode_part_sizes("8x²") is None
