"""A mixed load of prescriber offices, pharmacies and auditors, in realistic proportions, for locust.

The keys come from the environment (REMS_BENCH_TOKENS, the `tokens` object printed by `seed_demo --json`).
Prescribers enroll patients, attest counseling and obtain authorizations; pharmacies obtain an RDA for each and
confirm the dispense; auditors page through the compliance log and read reports. Every answer is checked: an
unexpected status is a failure.
"""

import json
import os
import random
import uuid
from collections import deque
from datetime import date

from locust import HttpUser, between, task

TOKENS = json.loads(os.environ["REMS_BENCH_TOKENS"])
NDC = "59572-0504-21"
READY = deque(maxlen=10000)  # authorizations waiting for a pharmacy: (number, date of birth)


def _headers(role):
    return {"Authorization": f"Token {TOKENS[role]}", "Content-Type": "application/json"}


class Prescriber(HttpUser):
    weight = 4
    wait_time = between(0.5, 1.5)

    @task(3)
    def enroll_and_prescribe(self):
        dob = date(1940 + random.randrange(60), random.randrange(1, 13), random.randrange(1, 29)).isoformat()
        with self.client.post("/api/v1/patients/", name="enroll", headers=_headers("prescriber"), json={
            "program": "pomalidomide", "first_name": "Load", "last_name": f"Test-{uuid.uuid4().hex[:12]}",
            "date_of_birth": dob, "risk_category": "MALE_ADULT", "agreement_signed_on": date.today().isoformat(),
        }, catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"enroll: {response.status_code}")
                return
            patient = response.json()["id"]
        self.client.post(f"/api/v1/patients/{patient}/attestations/", name="attest", headers=_headers("prescriber"),
                         json={"kind": "male_counseling"})
        with self.client.post("/api/v1/prescriptions/", name="prescription decision", headers=_headers("prescriber"),
                              json={"patient": patient, "ndc": NDC, "quantity": 21, "days_supply": 28},
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"prescription: {response.status_code} {response.text[:200]}")
                return
            READY.append((response.json()["authorization_number"], dob))

    @task(1)
    def list_patients(self):
        self.client.get("/api/v1/patients/?page_size=20", name="list patients", headers=_headers("prescriber"))


class Pharmacy(HttpUser):
    weight = 5
    wait_time = between(0.5, 1.5)

    @task
    def dispense(self):
        try:
            number, dob = READY.popleft()
        except IndexError:
            self.client.get("/api/v1/dispense-authorizations/?page_size=20", name="list RDAs",
                            headers=_headers("pharmacist"))
            return
        with self.client.post("/api/v1/dispense-authorizations/", name="dispense decision",
                              headers=_headers("pharmacist"), catch_response=True, json={
                                  "authorization_number": number, "patient_date_of_birth": dob, "ndc": NDC,
                                  "quantity": 21, "days_supply": 28}) as response:
            if response.status_code != 201:
                response.failure(f"RDA: {response.status_code} {response.text[:200]}")
                return
            rda = response.json()["rda_number"]
        self.client.post(f"/api/v1/dispense-authorizations/{rda}/dispense", name="confirm dispense",
                         headers=_headers("pharmacist"),
                         json={"counseling_confirmed": True, "medication_guide_provided": True})


class Auditor(HttpUser):
    weight = 1
    wait_time = between(1, 3)

    @task(3)
    def page_the_log(self):
        self.client.get("/api/v1/audit-events/?page_size=50", name="audit events", headers=_headers("auditor"))

    @task(1)
    def reports(self):
        self.client.get("/api/v1/reports/?period=day", name="reports", headers=_headers("auditor"))
