"""Walk the main flows over HTTP against a running service, with the demo keys.

    python scripts/smoke.py [BASE_URL] [--keys .local/demo-keys.json]

An FRP patient (two negative tests 12 days and 2 hours ago, contraception started 5 weeks ago) gets a
prescription authorization for 21 capsules of 4 mg for 28 days, the pharmacy gets an RDA with the date of birth
and confirms the dispense; a male patient with a counseling attestation does the same without tests; a wrong
date of birth is refused. Exits non-zero on the first surprise. Standard library only.
"""

import argparse
import json
import sys
import urllib.error
import urllib.request
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

NDC_4MG = "59572-0504-21"


class Client:
    def __init__(self, base, token):
        self.base, self.token = base.rstrip("/"), token

    def post(self, path, body):
        request = urllib.request.Request(
            f"{self.base}/api/v1/{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Token {self.token}", "Content-Type": "application/json",
                     "Idempotency-Key": str(uuid.uuid4())},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


def expect(status, body, wanted, what):
    if status != wanted:
        print(f"FAIL {what}: expected {wanted}, got {status}: {json.dumps(body)[:600]}")
        sys.exit(1)
    print(f"ok   {what} ({status})")
    return body


def walk(prescriber, pharmacist, *, risk_category, dob):
    now = datetime.now(timezone.utc)
    patient = expect(*prescriber.post("patients/", {
        "program": "pomalidomide", "first_name": "Demo", "last_name": f"Patient-{uuid.uuid4().hex[:8]}",
        "date_of_birth": dob,
        "risk_category": risk_category, "agreement_signed_on": str(date.today()),
    }), 201, f"enroll a {risk_category} patient")
    pid = patient["id"]
    if risk_category.startswith("FRP"):
        for ago in (timedelta(days=12), timedelta(hours=2)):
            expect(*prescriber.post(f"patients/{pid}/pregnancy-tests/", {
                "collected_at": (now - ago).isoformat(), "result": "negative", "sensitivity_miu_ml": 25,
            }), 201, f"record a negative pregnancy test {ago} ago")
        expect(*prescriber.post(f"patients/{pid}/attestations/", {
            "kind": "contraception", "methods": ["IUD", "MALE_CONDOM"], "abstinence": False,
            "started_on": str(date.today() - timedelta(weeks=5)),
        }), 201, "attest contraception started 5 weeks ago")
    else:
        expect(*prescriber.post(f"patients/{pid}/attestations/", {"kind": "male_counseling"}), 201,
               "attest condom counseling")
    decision = expect(*prescriber.post("prescriptions/", {
        "patient": pid, "ndc": NDC_4MG, "quantity": 21, "days_supply": 28,
    }), 201, "obtain a prescription authorization")
    number = decision["authorization_number"]
    refused = expect(*pharmacist.post("dispense-authorizations/", {
        "authorization_number": number, "patient_date_of_birth": "1900-01-01", "ndc": NDC_4MG, "quantity": 21,
        "days_supply": 28,
    }), 422, "a wrong date of birth is refused")
    assert "PATIENT_DOB_MATCH" in [c["code"] for c in refused["checks"] if not c["passed"]]
    rda = expect(*pharmacist.post("dispense-authorizations/", {
        "authorization_number": number, "patient_date_of_birth": dob, "ndc": NDC_4MG, "quantity": 21,
        "days_supply": 28,
    }), 201, f"obtain an RDA for {number}")
    expect(*pharmacist.post(f"dispense-authorizations/{rda['rda_number']}/dispense", {
        "counseling_confirmed": True, "medication_guide_provided": True,
    }), 200, f"confirm the dispense of {rda['rda_number']}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--keys", default=str(Path(__file__).resolve().parent.parent / ".local" / "demo-keys.json"))
    args = parser.parse_args()
    tokens = json.loads(Path(args.keys).read_text())["tokens"]
    prescriber, pharmacist = Client(args.base, tokens["prescriber"]), Client(args.base, tokens["pharmacist"])
    walk(prescriber, pharmacist, risk_category="FRP_ADULT", dob="1990-05-01")
    walk(prescriber, pharmacist, risk_category="MALE_ADULT", dob="1968-11-02")
    print("all flows passed")


if __name__ == "__main__":
    main()
