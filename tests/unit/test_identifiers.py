"""Identifiers people type: NPI, NCPDP provider ID, NDC and the service's authorization numbers."""

import math
from collections import defaultdict

import pytest

from rems.core.identifiers import (
    ALPHABET,
    DISPENSE_PREFIX,
    NUMBER_LENGTH,
    PRESCRIPTION_PREFIX,
    MalformedIdentifier,
    authorization_number_display,
    authorization_number_new,
    authorization_number_parse,
    ncpdp_check_digit,
    ncpdp_parse,
    ncpdp_with_check_digit,
    ndc_parse,
    npi_parse,
    npi_with_check_digit,
)

# Fullwidth digits (U+FF10..U+FF19) and Arabic-Indic digits (U+0660..U+0669): Unicode decimal digits that a
# regular expression's \d matches unless it is told ASCII only.
FULLWIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + i) for i in range(10)))
ARABIC_INDIC = str.maketrans("0123456789", "".join(chr(0x0660 + i) for i in range(10)))


def assert_refused_or_ascii(parse, text, canonical):
    """A non-ASCII spelling of an identifier must be refused, or normalised to the ASCII canonical form; it
    must never come back as a different string that would be stored and compared as another identifier."""
    try:
        value = parse(text)
    except MalformedIdentifier:
        return
    assert value == canonical, f"{text!r} parsed to {value!r}, neither refused nor normalised to {canonical!r}"


# --- NPI ------------------------------------------------------------------------------------------------
def test_npi_published_example_is_valid():
    # CMS's example: identifier 123456789, check digit 3 (Luhn with the 80840 prefix)
    assert npi_parse("1234567893") == "1234567893"


def test_npi_surrounding_whitespace_is_ignored():
    assert npi_parse(" 1234567893\n") == "1234567893"


@pytest.mark.parametrize("wrong", "012456789")
def test_npi_with_any_other_check_digit_is_refused(wrong):
    with pytest.raises(MalformedIdentifier, match="check digit"):
        npi_parse("123456789" + wrong)


def test_npi_1234567890_is_refused():
    with pytest.raises(MalformedIdentifier):
        npi_parse("1234567890")


@pytest.mark.parametrize("text", ["123456789", "12345678933", "", "   ", None])
def test_npi_of_the_wrong_length_is_refused(text):
    with pytest.raises(MalformedIdentifier):
        npi_parse(text)


@pytest.mark.parametrize("text", ["12345678a3", "1234-56789", "123456789O", "１２３４５６７８９３", "+234567893"])
def test_npi_with_non_digits_is_refused(text):
    with pytest.raises(MalformedIdentifier):
        npi_parse(text)


def test_npi_must_start_with_1_or_2():
    # valid Luhn, but NPIs are issued starting with 1 or 2 only
    number = npi_with_check_digit("323456789")
    with pytest.raises(MalformedIdentifier):
        npi_parse(number)


def test_npi_luhn_uses_the_80840_prefix():
    # Without the prefix, the Luhn check digit of 123456789 would be 7; with it, it is 3.
    assert npi_with_check_digit("123456789") == "1234567893"
    with pytest.raises(MalformedIdentifier):
        npi_parse("1234567897")


@pytest.mark.parametrize("first_nine", ["100000000", "199999999", "212345678", "150000001"])
def test_npi_with_check_digit_round_trips_and_catches_every_single_digit_error(first_nine):
    number = npi_with_check_digit(first_nine)
    assert npi_parse(number) == number
    for position in range(10):
        for digit in "0123456789":
            if digit == number[position]:
                continue
            typo = number[:position] + digit + number[position + 1:]
            with pytest.raises(MalformedIdentifier):
                npi_parse(typo)


# --- NCPDP provider ID ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "first_six, check",
    [
        # digits 1, 3, 5 summed plus twice the sum of digits 2, 4, 6; the units digit is the check digit
        ("123456", 3),  # 1+3+5 = 9, 2*(2+4+6) = 24, 33 -> 3
        ("000000", 0),
        ("999999", 1),  # 27 + 54 = 81 -> 1
        ("010101", 6),  # 0 + 2*3 = 6
        ("101010", 3),  # 3 + 0 = 3
        ("054321", 4),  # 0+4+2 = 6, 2*(5+3+1) = 18, 24 -> 4
    ],
)
def test_ncpdp_check_digit(first_six, check):
    assert ncpdp_check_digit(first_six) == check
    assert ncpdp_with_check_digit(first_six) == first_six + str(check)
    assert ncpdp_parse(first_six + str(check)) == first_six + str(check)


@pytest.mark.parametrize("wrong", "012456789")
def test_ncpdp_with_a_wrong_check_digit_is_refused(wrong):
    with pytest.raises(MalformedIdentifier):
        ncpdp_parse("123456" + wrong)


@pytest.mark.parametrize("text", ["123456", "12345633", "12345a3", "123-4563", "", None])
def test_ncpdp_of_the_wrong_shape_is_refused(text):
    with pytest.raises(MalformedIdentifier):
        ncpdp_parse(text)


def test_ncpdp_surrounding_whitespace_is_ignored():
    assert ncpdp_parse(" 1234563 ") == "1234563"


@pytest.mark.parametrize("digits", [FULLWIDTH, ARABIC_INDIC], ids=["fullwidth", "arabic-indic"])
def test_ncpdp_in_non_ascii_digits_is_refused_or_normalised(digits):
    assert_refused_or_ascii(ncpdp_parse, "1234563".translate(digits), "1234563")


# --- NDC ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, normalised",
    [
        ("59572-501-21", "59572-0501-21"),  # 5-3-2
        ("1234-5678-90", "01234-5678-90"),  # 4-4-2
        ("12345-6789-1", "12345-6789-01"),  # 5-4-1
        ("59572-0501-21", "59572-0501-21"),  # 5-4-2 already
        ("59572050121", "59572-0501-21"),  # bare 11 digits
        (" 59572-501-21 ", "59572-0501-21"),
    ],
)
def test_ndc_is_normalised_to_5_4_2(text, normalised):
    assert ndc_parse(text) == normalised


@pytest.mark.parametrize(
    "text",
    ["5957250121", "595720501", "595720501211", "59572-50-21", "595-72501-21", "59572-501-2-1", "59572 501 21",
     "5957A-501-21", "", None],
    ids=["bare-10", "bare-9", "bare-12", "5-2-2", "3-5-2", "four-segments", "spaces", "letter", "empty", "none"],
)
def test_ndc_that_is_ambiguous_or_malformed_is_refused(text):
    with pytest.raises(MalformedIdentifier):
        ndc_parse(text)


@pytest.mark.parametrize("text", ["59572-501-21", "59572050121"], ids=["hyphenated", "bare-11"])
@pytest.mark.parametrize("digits", [FULLWIDTH, ARABIC_INDIC], ids=["fullwidth", "arabic-indic"])
def test_ndc_in_non_ascii_digits_is_refused_or_normalised(text, digits):
    assert_refused_or_ascii(ndc_parse, text.translate(digits), "59572-0501-21")


def test_npi_in_non_ascii_digits_is_refused_or_normalised():
    for digits in (FULLWIDTH, ARABIC_INDIC):
        assert_refused_or_ascii(npi_parse, "1234567893".translate(digits), "1234567893")


# --- Authorization numbers ------------------------------------------------------------------------------
def luhn_mod_32_check_character(payload):
    """An independent Luhn mod N (N = 32, Crockford's alphabet) check character, to test against."""
    n = len(ALPHABET)
    total = 0
    for index, char in enumerate(reversed(payload)):
        addend = ALPHABET.index(char) * (2 if index % 2 == 0 else 1)
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def with_check(body):
    return body + luhn_mod_32_check_character(body)


# Fixed numbers built with the independent check character: no randomness in most tests.
P_NUMBER = with_check("P7K3M9QX2TC")
P_ZEROS_ONES = with_check("P0011001100")
R_NUMBER = with_check("R7K3M9QX2TC")


def test_crockford_alphabet_has_32_symbols_without_i_l_o_u():
    assert len(ALPHABET) == 32 == len(set(ALPHABET))
    assert not set("ILOU") & set(ALPHABET)


@pytest.mark.parametrize("prefix", [PRESCRIPTION_PREFIX, DISPENSE_PREFIX])
def test_new_numbers_have_12_characters_and_parse_back(prefix):
    for _ in range(200):
        number = authorization_number_new(prefix)
        assert len(number) == NUMBER_LENGTH == 12
        assert number[0] == prefix
        assert set(number) <= set(ALPHABET)
        assert number[-1] == luhn_mod_32_check_character(number[:-1])
        assert authorization_number_parse(number, prefix=prefix, kind="test") == number


def test_fixed_numbers_built_by_the_independent_check_parse():
    for number, prefix in ((P_NUMBER, "P"), (P_ZEROS_ONES, "P"), (R_NUMBER, "R")):
        assert authorization_number_parse(number, prefix=prefix, kind="test") == number


@pytest.mark.parametrize("number", [P_NUMBER, P_ZEROS_ONES])
def test_every_single_character_substitution_is_refused(number):
    accepted = []
    for position in range(NUMBER_LENGTH):
        for char in ALPHABET:
            if char == number[position]:
                continue
            typo = number[:position] + char + number[position + 1:]
            try:
                authorization_number_parse(typo, prefix="P", kind="prescription authorization")
            except MalformedIdentifier:
                continue
            accepted.append(typo)
    assert accepted == []


def test_every_single_character_substitution_of_generated_numbers_is_refused():
    for prefix in (PRESCRIPTION_PREFIX, DISPENSE_PREFIX):
        for _ in range(5):
            number = authorization_number_new(prefix)
            for position in range(NUMBER_LENGTH):
                for char in ALPHABET:
                    if char == number[position]:
                        continue
                    typo = number[:position] + char + number[position + 1:]
                    with pytest.raises(MalformedIdentifier):
                        authorization_number_parse(typo, prefix=prefix, kind="authorization")


@pytest.mark.parametrize(
    "typed",
    [
        lambda n: n.lower(),
        lambda n: f"{n[:5]}-{n[5:10]}-{n[10:]}",
        lambda n: f"{n[:5]} {n[5:10]} {n[10:]}",
        lambda n: f"  {n[:4]} - {n[4:8]}\t{n[8:]}  ",
        lambda n: authorization_number_display(n).lower(),
    ],
    ids=["lowercase", "hyphens", "spaces", "mixed-separators", "display-lowercase"],
)
def test_lowercase_hyphens_and_spaces_are_accepted(typed):
    assert authorization_number_parse(typed(P_NUMBER), prefix="P", kind="prescription authorization") == P_NUMBER


def test_o_is_read_as_zero_and_i_or_l_as_one():
    # P_ZEROS_ONES is P 0011001100 + check; type its zeros as O/o and its ones as I/i/L/l
    typed = "P" + "OoIl00LiOo" + P_ZEROS_ONES[-1]
    assert typed.upper().replace("O", "0").replace("I", "1").replace("L", "1") == P_ZEROS_ONES
    assert authorization_number_parse(typed, prefix="P", kind="prescription authorization") == P_ZEROS_ONES


def test_display_form_groups_the_number_and_parses_back():
    shown = authorization_number_display(P_NUMBER)
    assert shown == f"{P_NUMBER[:5]}-{P_NUMBER[5:10]}-{P_NUMBER[10:]}"
    assert authorization_number_parse(shown, prefix="P", kind="prescription authorization") == P_NUMBER


def test_wrong_prefix_is_refused():
    with pytest.raises(MalformedIdentifier, match="starts with P"):
        authorization_number_parse(R_NUMBER, prefix="P", kind="prescription authorization")
    with pytest.raises(MalformedIdentifier, match="starts with R"):
        authorization_number_parse(P_NUMBER, prefix="R", kind="dispense authorization")


@pytest.mark.parametrize(
    "text",
    [P_NUMBER[:-1], P_NUMBER + "0", "", "P", P_NUMBER[:6] + "U" + P_NUMBER[7:], P_NUMBER[:6] + "*" + P_NUMBER[7:],
     P_NUMBER[:6] + "_" + P_NUMBER[7:]],
    ids=["too-short", "too-long", "empty", "prefix-only", "letter-u", "star", "underscore"],
)
def test_malformed_numbers_are_refused(text):
    with pytest.raises(MalformedIdentifier):
        authorization_number_parse(text, prefix="P", kind="prescription authorization")


@pytest.mark.parametrize("value", [None, 123456789012, b"P7K3M9QX2TCX"])
def test_non_text_is_refused(value):
    with pytest.raises(MalformedIdentifier):
        authorization_number_parse(value, prefix="P", kind="prescription authorization")


def test_adjacent_swaps_of_distinct_characters_are_mostly_caught():
    # Luhn mod N catches most, not all, transpositions; require at least 90% over a fixed number's swaps
    number = P_NUMBER
    swaps = caught = 0
    for position in range(1, NUMBER_LENGTH - 1):
        a, b = number[position], number[position + 1]
        if a == b:
            continue
        swaps += 1
        typo = number[:position] + b + a + number[position + 2:]
        try:
            authorization_number_parse(typo, prefix="P", kind="prescription authorization")
        except MalformedIdentifier:
            caught += 1
    assert swaps >= 9
    assert caught / swaps >= 0.9


def test_numbers_carry_at_least_40_bits_of_randomness():
    draws = [authorization_number_new(PRESCRIPTION_PREFIX) for _ in range(10_000)]
    # no two of 10,000 draws collide (with 40 bits a collision has odds of about 1 in 20,000)
    assert len(set(draws)) == len(draws)
    # every random position takes every one of the 32 symbols, so each carries 5 bits
    seen = defaultdict(set)
    for number in draws:
        for position, char in enumerate(number[1:-1], start=1):
            seen[position].add(char)
    random_positions = [p for p in seen if len(seen[p]) == len(ALPHABET)]
    assert len(random_positions) * math.log2(len(ALPHABET)) >= 40
