"""Identifiers people type: NPI, NCPDP provider ID, NDC, and the service's own authorization numbers.

Pure functions, no database. Every parser raises `MalformedIdentifier` with a message a person can act on.
"""

import re
import secrets


class MalformedIdentifier(ValueError):
    """The text is not a well-formed identifier of the expected kind."""


# --- NPI ------------------------------------------------------------------------------------------------
def _luhn_check_digit(payload: str) -> int:
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:  # the digit next to the check digit is doubled
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def npi_parse(text: str) -> str:
    """An NPI is 10 digits whose last is a Luhn check digit over the prefix 80840 and the first 9."""
    value = (text or "").strip()
    if not re.fullmatch(r"[0-9]{10}", value):
        raise MalformedIdentifier("An NPI is exactly 10 digits.")
    if value[0] not in "12":
        raise MalformedIdentifier("An NPI starts with 1 or 2.")
    if _luhn_check_digit("80840" + value[:9]) != int(value[9]):
        raise MalformedIdentifier("This NPI's check digit does not match; check for a typing error.")
    return value


def npi_with_check_digit(first_nine: str) -> str:
    return first_nine + str(_luhn_check_digit("80840" + first_nine))


# --- NCPDP provider ID ----------------------------------------------------------------------------------
def ncpdp_check_digit(first_six: str) -> int:
    # NCPDP (formerly NABP) number: digits 1, 3 and 5 summed, plus twice the sum of digits 2, 4 and 6;
    # the units digit of the total is the seventh digit.
    digits = [int(c) for c in first_six]
    return (digits[0] + digits[2] + digits[4] + 2 * (digits[1] + digits[3] + digits[5])) % 10


def ncpdp_parse(text: str) -> str:
    value = (text or "").strip()
    if not re.fullmatch(r"[0-9]{7}", value):
        raise MalformedIdentifier("An NCPDP provider ID is exactly 7 digits.")
    if ncpdp_check_digit(value[:6]) != int(value[6]):
        raise MalformedIdentifier("This NCPDP provider ID's check digit does not match; check for a typing error.")
    return value


def ncpdp_with_check_digit(first_six: str) -> str:
    return first_six + str(ncpdp_check_digit(first_six))


# --- NDC ------------------------------------------------------------------------------------------------
_NDC_SEGMENTS = {(4, 4, 2): (1, 0, 0), (5, 3, 2): (0, 1, 0), (5, 4, 1): (0, 0, 1), (5, 4, 2): (0, 0, 0)}


def ndc_parse(text: str) -> str:
    """Normalise an NDC to the 11-digit 5-4-2 form with hyphens.

    A 10-digit NDC is only unambiguous with its hyphens (4-4-2, 5-3-2 or 5-4-1); 11 digits may come bare.
    """
    value = (text or "").strip()
    if re.fullmatch(r"[0-9]{11}", value):
        return f"{value[:5]}-{value[5:9]}-{value[9:]}"
    match = re.fullmatch(r"([0-9]+)-([0-9]+)-([0-9]+)", value)
    if not match:
        raise MalformedIdentifier(
            "An NDC is 11 digits, or 10 digits written with hyphens (4-4-2, 5-3-2 or 5-4-1)."
        )
    parts = match.groups()
    padding = _NDC_SEGMENTS.get(tuple(len(p) for p in parts))
    if padding is None:
        raise MalformedIdentifier("An NDC's segments are 4-4-2, 5-3-2, 5-4-1 or 5-4-2 digits long.")
    labeler, product, package = ("0" * pad + part for pad, part in zip(padding, parts))
    return f"{labeler}-{product}-{package}"


# --- Authorization numbers ------------------------------------------------------------------------------
# Crockford's base 32: no I, L, O or U, so what is read off paper cannot be confused; when typed, O is read
# as 0 and I or L as 1, hyphens and spaces are ignored, and case does not matter.
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {char: index for index, char in enumerate(ALPHABET)}
_TYPED = str.maketrans({"O": "0", "I": "1", "L": "1"})
RANDOM_LENGTH = 10  # 10 symbols of 5 bits: 50 bits of randomness
PRESCRIPTION_PREFIX = "P"
DISPENSE_PREFIX = "R"
NUMBER_LENGTH = 1 + RANDOM_LENGTH + 1  # prefix, random part, check character: 12


def _check_character(payload: str) -> str:
    # Luhn mod N over the alphabet: catches every single-character error and most adjacent swaps.
    n = len(ALPHABET)
    factor, total = 2, 0
    for char in reversed(payload):
        addend = factor * _VALUE[char]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def authorization_number_new(prefix: str) -> str:
    body = prefix + "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return body + _check_character(body)


def authorization_number_parse(text: str, *, prefix: str, kind: str) -> str:
    """Return the canonical number, or raise MalformedIdentifier before anything is looked up."""
    if not isinstance(text, str):
        raise MalformedIdentifier(f"A {kind} number is text.")
    value = re.sub(r"[\s-]", "", text).upper().translate(_TYPED)
    if len(value) != NUMBER_LENGTH:
        raise MalformedIdentifier(f"A {kind} number has {NUMBER_LENGTH} characters.")
    if value[0] != prefix:
        raise MalformedIdentifier(f"A {kind} number starts with {prefix}.")
    bad = sorted({char for char in value if char not in _VALUE})
    if bad:
        raise MalformedIdentifier(f"A {kind} number cannot contain {', '.join(bad)}.")
    if _check_character(value[:-1]) != value[-1]:
        raise MalformedIdentifier(f"This {kind} number's check character does not match; check for a typing error.")
    return value


def authorization_number_display(number: str) -> str:
    """How a number is printed for people, in groups: PPJ5E-C61EP-52 (the hyphens are optional when typed)."""
    return f"{number[:5]}-{number[5:10]}-{number[10:]}" if len(number) == NUMBER_LENGTH else number
