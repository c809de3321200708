"""One seed rule and one id rule for the horde and the worker, as the public horde has them."""

from __future__ import annotations

import uuid

import pytest

from horde_protocol.ids import canonical_id, new_id
from horde_protocol.seeds import fold, image_seeds, seed_to_int


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        ("42", 42),
        (42, 42),
        ("0", 0),
        (str(2**32 - 1), 2**32 - 1),
        # 2**40 is shifted right by 32 bits, not reduced modulo 2**32 (which would give 0).
        (str(2**40), 2**8),
        # Not digits: the text's UTF-8 bytes read little-endian, so "-5" is text, not -5.
        ("-5", int.from_bytes(b"-5", "little")),
        ("a", ord("a")),
        ("ab", ord("a") + 256 * ord("b")),
    ],
)
def test_seed_text_becomes_the_public_hordes_integer(seed: str | int, expected: int) -> None:
    assert seed_to_int(seed) == expected


def test_long_text_seeds_fold_below_2_to_the_32() -> None:
    text = "the little seed that could"
    value = int.from_bytes(text.encode(), "little")
    while value >= 2**32:
        value >>= 32
    assert seed_to_int(text) == value < 2**32
    assert seed_to_int("a cat") != seed_to_int("a dog")


def test_decimal_digits_of_any_script_are_numbers_other_digit_signs_are_text() -> None:
    assert seed_to_int("٣٤") == 34  # Arabic-Indic digits, read by int() as on the public horde
    # "²" passes str.isdigit() but int() refuses it: it is hashed as text instead of failing.
    assert seed_to_int("²") == fold(int.from_bytes("²".encode(), "little"))


def test_a_given_seed_is_shared_by_every_image_unless_a_variation_is_asked() -> None:
    assert image_seeds("41", 3) == [41, 41, 41]
    assert image_seeds("41", 3, variation=1) == [41, 42, 43]
    assert image_seeds("41", 3, variation=1000) == [41, 1041, 2041]
    assert image_seeds(str(2**32 - 1), 2, variation=1) == [2**32 - 1, fold(2**32)]


def test_without_a_seed_every_image_gets_its_own_random_seed() -> None:
    for blank in (None, ""):
        seeds = image_seeds(blank, 20)
        assert len(set(seeds)) > 1 and all(0 <= s < 2**32 for s in seeds)


def test_ids_are_dashed_uuids_and_any_notation_is_read_back() -> None:
    made = new_id()
    assert str(uuid.UUID(made)) == made
    parsed = uuid.UUID(made)
    for notation in (made, made.upper(), parsed.hex, f"{{{made}}}", parsed.urn):
        assert canonical_id(notation) == made
    for bad in ("", "x", "1234", "g" * 32, made + "0", "a" * 5000):
        assert canonical_id(bad) is None
