"""What to do about each failed check, as the portal and the CDS Hooks cards say it: a text for every check code
a decision can fail, in every program, rule set and category, short enough for a card's summary."""

import json

import pytest

from rems.core.rules import RuleParameters
from rems.interfaces.fixes import PHARMACY, PRESCRIBER
from rems.program.programs import BUNDLED

CARD_SUMMARY = 140  # CDS Hooks: a one-sentence summary of fewer than 140 characters

RULE_SETS = [(f"{path.stem}@{rs['version']}", RuleParameters.from_dict(rs["parameters"]))
             for path in sorted(BUNDLED.glob("*.json")) for rs in json.loads(path.read_text())["rule_sets"]]


@pytest.mark.parametrize("label, params", RULE_SETS, ids=[label for label, _ in RULE_SETS])
def test_every_fix_fits_a_card_summary_in_every_category(label, params):
    for category in params.risk_categories:
        for fixes in (PRESCRIBER, PHARMACY):
            for code, make in fixes.items():
                text = make(params, category)
                assert text and len(text) <= CARD_SUMMARY, (label, category, code, len(text), text)


def test_every_prescription_check_code_has_a_fix():
    import re
    from pathlib import Path

    import rems.core.gates as gates

    codes = set(re.findall(r'"([A-Z][A-Z_]{5,})"', Path(gates.__file__).read_text()))
    prescription_codes = codes - {"AUTHORIZATION_FOUND", "AUTHORIZATION_NOT_EXPIRED", "AUTHORIZATION_UNUSED",
                                  "PRODUCT_MATCH", "QUANTITY_MATCH", "DAYS_SUPPLY_MATCH", "PHARMACY_CERTIFIED",
                                  "PATIENT_DOB_MATCH", "RISK_CATEGORY_UNCHANGED", "MATCH_ATTEMPTS_LIMIT"}
    assert prescription_codes <= set(PRESCRIBER), sorted(prescription_codes - set(PRESCRIBER))
