"""The portal in a real browser: the machine's Chromium driven by Playwright against the service on a live
server, with the real PostgreSQL behind it. Each walk checks every main page it reaches, at 390 px and at
1280 px: it reloads the page (every page a user lands on can be reloaded: no 4xx or 5xx), runs axe-core in it
(zero violations of the WCAG 2.1 A and AA rules), checks that nothing scrolls sideways on a phone, that every
form control has a label and that the Content-Security-Policy blocked nothing, and saves a screenshot of it at
both widths under test-artifacts/screenshots/.
"""

import csv
import io
import json
import os
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from accounts.models import Role
from dispensing import dispenses, prescriptions
from dispensing.models import DispenseAuthorization, Prescription
from rems.compliance_log.models import ComplianceLogEntry
from rems.program import patients, records
from rems.program.certifications import certification_create
from rems.program.models import AttestationKind, Patient
from rems.program.programs import BUNDLED, program_load
from tests.conftest import POMALIDOMIDE_4MG, make_party
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# axe-core from npm, installed by scripts/install-browser.sh (the version is pinned there)
AXE = Path(os.environ.get("AXE_CORE_PATH", ROOT / ".local/axe-core/node_modules/axe-core/axe.min.js"))
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PASSWORD = "a-long-enough-passphrase-42"
ZONE = "America/New_York"  # the browser's clock: typed and shown times are in this zone
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install the system package (scripts/install-browser.sh)")
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: install axe-core (scripts/install-browser.sh)")
    # Playwright's synchronous API keeps an event loop in the test's thread; the ORM calls these tests make for
    # set-up and checks are still plain synchronous calls. Only for this module: nothing started after it (a
    # deployment check, say) may inherit the setting.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        yield from _chromium()
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _chromium():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", "--disable-quic",
        ])
        yield browser
        browser.close()


class Walk:
    """One person's browser: signs in, and checks and photographs each main page it reaches."""

    def __init__(self, chromium, live_server, name):
        self.context = chromium.new_context(viewport=PHONE, timezone_id=ZONE, locale="en-US", accept_downloads=True)
        # axe-core is put in each page the way a browser extension would be, so the page's own
        # Content-Security-Policy (no inline script) stays as it is served.
        self.context.add_init_script(path=str(AXE))
        self.page = self.context.new_page()
        self.base = live_server.url
        self.name = name
        self.csp_violations = []
        self.failed_requests = []
        self.page.on("console", self._console)
        self.page.on("response", self._response)

    def _console(self, message):
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.csp_violations.append(message.text)

    def _response(self, response):
        # what a page loads (its styles, scripts, icons) is always there; the pages themselves are checked by
        # their own status
        if response.status >= 400 and response.request.resource_type != "document":
            self.failed_requests.append(f"{response.status} {response.url}")

    def go(self, path):
        self.page.goto(self.base + path)

    def sign_in(self, username):
        self.go("/login")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_load_state()

    def axe(self, shot, width):
        violations = self.page.evaluate("""async (tags) => {
            const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
        }""", AXE_RULES)
        assert violations == [], f"{shot} at {width}px: WCAG 2.1 A/AA violations: {violations}"

    def check(self, shot, status=200):
        """The page as a phone and as a desktop show it: no sideways scroll on a phone, every control labelled,
        nothing blocked or missing, no WCAG 2.1 A/AA violation, a screenshot at each width; then reloaded, with
        no 4xx or 5xx (a form's errors, like any message, are shown once: reloaded, the form is empty again)."""
        page = self.page
        page.set_viewport_size(PHONE)
        page.wait_for_load_state()
        assert self.failed_requests == [], f"{shot}: {self.failed_requests}"
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        wide = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
            .filter(el => el.getBoundingClientRect().right > window.innerWidth + 1)
            .slice(0, 5).map(el => el.tagName + '.' + el.className + ' ' + (el.textContent || '').slice(0, 40))""")
        assert overflow <= 0, f"{shot}: the page scrolls sideways by {overflow}px at 390px: {wide}"
        # nor does any box inside it (a wide table in a scrolling wrapper, say)
        scrolling = page.evaluate("""() => Array.from(document.querySelectorAll('body *'))
            .filter(el => el.offsetParent !== null && el.scrollWidth > el.clientWidth + 1
                          && ['auto', 'scroll'].includes(getComputedStyle(el).overflowX))
            .map(el => el.tagName + '.' + el.className)""")
        assert scrolling == [], f"{shot}: boxes that scroll sideways at 390px: {scrolling}"
        unlabelled = page.evaluate("""() => Array.from(document.querySelectorAll(
              'input:not([type=hidden]), select, textarea'))
            .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                          && !el.getAttribute('aria-labelledby'))
            .map(el => el.name)""")
        assert unlabelled == [], f"{shot}: controls without a label: {unlabelled}"
        assert page.locator("main#main").count() == 1 and page.locator("h1").count() == 1
        assert self.csp_violations == [], self.csp_violations
        self.axe(shot, PHONE["width"])
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{shot}-390.png"), full_page=True)
        page.set_viewport_size(DESKTOP)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{shot}: the page scrolls sideways by {overflow}px at 1280px"
        self.axe(shot, DESKTOP["width"])
        page.wait_for_timeout(100)  # let a chart follow the new width
        page.screenshot(path=str(SCREENSHOTS / f"{self.name}-{shot}-1280.png"), full_page=True)
        page.set_viewport_size(PHONE)
        url = page.url
        response = page.reload()
        assert response is not None and response.status == status, f"{shot}: reloading {url} gave {response.status}"
        assert page.url == url and self.failed_requests == [], (shot, self.failed_requests)
        self.axe(shot + " (reloaded)", PHONE["width"])

    def close(self):
        self.context.close()


@pytest.fixture
def walk(chromium, live_server):
    walks = []

    def start(name):
        walks.append(Walk(chromium, live_server, name))
        return walks[-1]

    yield start
    for w in walks:
        w.close()


def person(role, **party):
    user = UserFactory(role=role, is_staff=role == Role.ADMIN, **party)
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def parties(program):
    now = timezone.now() - timedelta(days=60)
    ours, theirs = make_party(program, now), make_party(program, now)
    for party in (ours, theirs):
        for user in party.users.values():
            user.set_password(PASSWORD)
            user.save()
    return {"ours": ours, "theirs": theirs, "auditor": person(Role.AUDITOR)}


def local_input(moment):
    """What a person in ZONE types into a date-and-time field for `moment`."""
    return moment.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M")


def mistype(number):
    """The same number with one character changed, as a slip of the finger would."""
    wrong = "7" if number[5] != "7" else "8"
    return number[:5] + wrong + number[6:]


def test_a_prescriber_enrolls_an_frp_patient_records_tests_and_an_attestation_and_obtains_an_authorization(
        walk, parties):
    w = walk("prescriber")
    prescriber = parties["ours"].users["prescriber"]
    w.sign_in(prescriber.username)
    page = w.page
    expect(page.get_by_role("heading", name="Patients")).to_be_visible()
    w.check("patients-empty")
    page.get_by_role("link", name="Enroll a patient").click()
    # nothing is chosen in advance: neither the program nor the risk category
    expect(page.get_by_label("Program", exact=True)).to_have_value("")
    expect(page.get_by_label("Risk category (of the program chosen above)")).to_have_value("")
    w.check("enroll")
    page.get_by_label("Program", exact=True).select_option("pomalidomide")
    page.get_by_label("First name").fill("Maria")
    page.get_by_label("Last name").fill("Browser")
    page.get_by_label("Date of birth").fill("1991-07-14")
    page.get_by_label("Patient-Prescriber Agreement signed on").fill(str(timezone.localdate()))
    page.get_by_role("button", name="Enroll").click()
    # the category was forgotten: said next to its field, with what was typed kept
    expect(page.locator("#id_risk_category_error")).to_contain_text("required")
    expect(page.get_by_label("First name")).to_have_value("Maria")
    w.check("enroll-error")
    page.get_by_label("Program", exact=True).select_option("pomalidomide")
    page.get_by_label("First name").fill("Maria")
    page.get_by_label("Last name").fill("Browser")
    page.get_by_label("Date of birth").fill("1991-07-14")
    page.get_by_label("Patient-Prescriber Agreement signed on").fill(str(timezone.localdate()))
    page.get_by_label("Risk category (of the program chosen above)").select_option("FRP_ADULT")
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_role("status")).to_contain_text("is enrolled")
    expect(page.locator(".due-missing").first).to_contain_text("Missing")
    w.check("patient-new")

    # Asked too early: denied, every reason with what to do, at an address that can be reloaded and shared.
    page.get_by_label(re.compile("Pomalidomide 4 mg")).check()
    expect(page.get_by_label("Quantity (capsules)")).to_have_value("21")  # one bottle
    page.get_by_role("button", name="Request authorization").click()
    refusal = page.locator(".decision")
    expect(refusal).to_contain_text("Not authorized")
    expect(refusal).to_contain_text("PREGNANCY_TEST_FIRST")
    expect(refusal).to_be_focused()
    assert re.search(r"/patients/[0-9a-f-]+/decisions/[0-9a-f-]+$", page.url)
    w.check("patient-denied")
    expect(page.locator(".decision")).to_contain_text("PREGNANCY_TEST_FIRST")

    now = timezone.now()
    for ago in (timedelta(days=12), timedelta(hours=2)):
        page.get_by_label("Collected at").fill(local_input(now - ago))
        page.get_by_label("Negative").check()
        page.get_by_label("Sensitivity (mIU/mL)").fill("25")
        page.get_by_role("button", name="Record test").click()
        expect(page.get_by_role("status")).to_contain_text("pregnancy test is recorded")
    patient = Patient.objects.get(last_name="Browser")
    tests = sorted(t.collected_at for t in patient.pregnancy_tests.all())
    # typed in New York time, stored as the same instant
    assert abs(tests[0] - (now - timedelta(days=12))) < timedelta(minutes=1)

    page.get_by_label("Intrauterine device").check()
    page.get_by_label("Male latex or synthetic condom").check()
    page.get_by_label("Contraception (or abstinence) started on").fill(str(timezone.localdate() - timedelta(weeks=5)))
    page.get_by_role("button", name="Record attestation").click()
    expect(page.get_by_role("status")).to_contain_text("attestation is recorded")
    w.check("patient-ready")

    page.get_by_label(re.compile("Pomalidomide 4 mg")).check()
    expect(page.get_by_label("Quantity (capsules)")).to_have_value("21")
    page.get_by_label("Days' supply").fill("21")
    page.get_by_role("button", name="Request authorization").click()
    number = page.get_by_test_id("authorization-number")
    expect(number).to_be_visible()
    prescription = Prescription.objects.get(patient=patient)
    # shown in groups, copied as one word
    assert number.inner_text() == prescription.authorization_number
    assert number.locator(".number-group").count() == 3
    expect(page.locator(".authorization-number")).to_contain_text("FRP_ADULT")
    w.check("authorization")

    page.get_by_role("link", name="Patients").first.click()
    expect(page.locator(".patient-card")).to_contain_text("Open authorization")
    w.check("patients")
    # a form's address opened as a page is the page the form is on
    assert page.goto(f"{w.base}/patients/{patient.pk}/authorize").status == 200
    assert page.url.endswith(f"/patients/{patient.pk}/")


@pytest.fixture
def frp_prescription(parties, program):
    """An FRP patient of our prescriber with an authorization issued now, ready for the counter."""
    office = parties["ours"]
    prescriber = office.users["prescriber"]
    now = timezone.now()
    patient = patients.patient_enroll(
        actor=prescriber, prescriber=office.prescriber, program=program, first_name="Counter", last_name="Ready",
        date_of_birth=timezone.datetime(1988, 2, 29).date(), risk_category="FRP_ADULT",
        irregular_cycles=False, agreement_signed_on=(now - timedelta(days=40)).date(), now=now - timedelta(days=40))
    return _authorize(prescriber, patient, now)


def _authorize(prescriber, patient, at):
    records.pregnancy_test_record(actor=prescriber, patient=patient, collected_at=at - timedelta(days=12),
                                   result="negative", sensitivity_miu_ml=25, now=at)
    records.pregnancy_test_record(actor=prescriber, patient=patient, collected_at=at - timedelta(hours=2),
                                   result="negative", sensitivity_miu_ml=25, now=at)
    records.attestation_record(actor=prescriber, patient=patient, kind=AttestationKind.CONTRACEPTION,
                                methods=["IUD", "MALE_CONDOM"], started_on=(at - timedelta(weeks=5)).date(), now=at)
    decision, _, prescription = prescriptions.prescription_authorize(
        actor=prescriber, patient=patient, ndc=POMALIDOMIDE_4MG, quantity=28, days_supply=28, now=at)
    assert prescription is not None, [c for c in decision.checks if not c.passed]
    return prescription


def test_a_pharmacist_mistypes_the_number_then_obtains_the_rda_and_confirms_the_dispense(walk, parties,
                                                                                          frp_prescription):
    w = walk("pharmacist")
    w.sign_in(parties["ours"].users["pharmacist"].username)
    page = w.page
    expect(page.get_by_role("heading", name="Request a dispense authorization")).to_be_visible()
    expect(page.get_by_label("Product")).to_have_value("")  # no product until the number says which
    w.check("counter")
    number = page.get_by_label("Prescription authorization number")
    typo = mistype(frp_prescription.authorization_number)

    # Caught as it is typed, by the check character, before anything is sent...
    number.focus()
    page.keyboard.type(typo.lower())
    expect(page.locator("#id_authorization_number_live")).to_contain_text("typing error")
    expect(number).to_have_attribute("aria-invalid", "true")
    w.check("counter-typo")
    number = page.get_by_label("Prescription authorization number")
    number.fill(typo)
    # ...and by the server if it is sent anyway, with nothing decided or logged.
    decisions = ComplianceLogEntry.objects.filter(action="dispense_authorization.request").count()
    page.get_by_label("Patient's date of birth").fill("1988-02-29")
    page.get_by_label("Product").select_option(POMALIDOMIDE_4MG)
    page.get_by_label("Quantity (capsules)").fill("28")
    page.get_by_label("Days' supply").fill("28")
    page.get_by_role("button", name="Check and authorize").click()
    expect(page.locator("#id_authorization_number_error")).to_contain_text("check character does not match")
    expect(page.get_by_label("Patient's date of birth")).to_have_value("1988-02-29")
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.request").count() == decisions
    w.check("counter-error")

    # The right number, typed with the keyboard alone; the product comes from the authorization.
    page.get_by_label("Patient's date of birth").fill("1988-02-29")
    page.get_by_label("Product").select_option("")
    number = page.get_by_label("Prescription authorization number")
    number.fill("")
    number.focus()
    page.keyboard.type(frp_prescription.authorization_number)
    expect(page.locator("#id_authorization_number_live")).to_contain_text("check character matches")
    expect(page.get_by_label("Product")).to_have_value(POMALIDOMIDE_4MG)
    page.get_by_label("Quantity (capsules)").fill("28")
    page.get_by_label("Days' supply").fill("28")
    page.get_by_label("Days' supply").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("rda-status")).to_contain_text("Approved")
    # what to check against the prescription, and no more of the patient than that
    expect(page.get_by_test_id("rda-patient")).to_have_text("C. R., born 1988-02-29")
    expect(page.locator("main")).not_to_contain_text("Counter Ready")
    w.check("rda")

    # The counseling checklist, ticked with the keyboard: the dispense is refused until all is ticked.
    boxes = page.locator("form[action$='/dispense'] input[type=checkbox]")
    assert boxes.count() == 5
    for i in range(4):
        boxes.nth(i).focus()
        page.keyboard.press("Space")
    page.get_by_role("button", name="Confirm the dispense").click()
    expect(page.get_by_role("alert")).to_contain_text("Tick every counseling point")
    for i in range(4):  # what was ticked stays ticked
        expect(boxes.nth(i)).to_be_checked()
    w.check("rda-unticked")
    for i in range(5):
        boxes.nth(i).check()
    page.get_by_role("button", name="Confirm the dispense").click()
    expect(page.get_by_test_id("rda-status")).to_have_text("Dispensed")
    rda = DispenseAuthorization.objects.get(prescription=frp_prescription)
    assert rda.status == "dispensed" and rda.counseling_confirmed and rda.medication_guide_provided
    expect(page.locator("main")).not_to_contain_text("Dispense by")
    w.check("dispensed")
    page.get_by_role("link", name="Recent dispenses").click()
    table = page.locator("table")
    expect(table).to_contain_text(rda.rda_number)
    expect(table).to_contain_text(frp_prescription.authorization_number)
    w.check("dispenses")

    # Right after the first dispense, the prescriber's page says nothing is missing or overdue.
    p = walk("prescriber-after-dispense")
    p.sign_in(parties["ours"].users["prescriber"].username)
    p.go(f"/patients/{frp_prescription.patient_id}/")
    expect(p.page.locator(".due").first).to_be_visible()
    assert p.page.locator(".due-missing, .due-overdue").count() == 0, p.page.locator(".due-list").inner_text()
    p.check("patient-dispensed")


def test_a_pharmacist_is_refused_for_a_stale_pregnancy_test_and_an_auditor_finds_and_exports_it(
        walk, parties, program):
    office = parties["ours"]
    prescriber = office.users["prescriber"]
    issued_at = timezone.now() - timedelta(days=8)
    patient = patients.patient_enroll(
        actor=prescriber, prescriber=office.prescriber, program=program, first_name="Stale", last_name="Test",
        date_of_birth=timezone.datetime(1985, 9, 1).date(), risk_category="FRP_ADULT",
        irregular_cycles=False, agreement_signed_on=(issued_at - timedelta(days=40)).date(), now=issued_at - timedelta(days=40))
    # The authorization was issued 8 days ago on a test collected 2 hours before: it lasted 7 days from the test.
    prescription = _authorize(prescriber, patient, issued_at)

    w = walk("pharmacist-refused")
    w.sign_in(office.users["pharmacist"].username)
    page = w.page
    page.get_by_label("Prescription authorization number").fill(prescription.authorization_number)
    page.get_by_label("Patient's date of birth").fill("1985-09-01")
    page.get_by_label("Product").select_option(POMALIDOMIDE_4MG)
    page.get_by_label("Quantity (capsules)").fill("28")
    page.get_by_label("Days' supply").fill("28")
    page.get_by_role("button", name="Check and authorize").click()
    refusal = page.locator(".decision")
    expect(refusal).to_contain_text("Not authorized")
    expect(refusal).to_contain_text("AUTHORIZATION_NOT_EXPIRED")
    expect(refusal).to_contain_text("latest negative pregnancy test, which is now too old")
    expect(refusal).to_contain_text("What to do:")
    expect(refusal).to_be_focused()
    assert not DispenseAuthorization.objects.exists()
    assert re.search(r"/counter/decisions/[0-9a-f-]+$", page.url)
    w.check("counter-refused")
    expect(page.locator(".decision")).to_contain_text("AUTHORIZATION_NOT_EXPIRED")
    # reloaded, the same decision: nothing was asked again
    assert ComplianceLogEntry.objects.filter(action="dispense_authorization.request").count() == 1

    a = walk("auditor")
    a.sign_in(parties["auditor"].username)
    page = a.page
    expect(page.get_by_role("heading", name="Compliance log")).to_be_visible()
    a.check("audit")
    # a check code in any case
    page.get_by_text("More filters").click()
    page.get_by_label("Failed check code").fill("authorization_not_expired")
    page.get_by_role("button", name="Search").click()
    rows = page.locator("table.log tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dispense_authorization.request")
    expect(rows.first).to_contain_text("Denied")
    expect(rows.first).to_contain_text("Test, Stale")
    a.check("audit-search")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    content = Path(download.value.path()).read_text()
    exported = list(csv.DictReader(io.StringIO(content)))
    assert len(exported) == 1 and exported[0]["failed_checks"] == "AUTHORIZATION_NOT_EXPIRED"
    assert exported[0]["prescription_id"] == str(prescription.pk)

    # the patient's entries, by name, and an outcome in any case; logins apart
    a.go("/audit/?" + urlencode({"patient": "stale test", "outcome": "Denied"}))
    expect(rows).to_have_count(1)
    a.go("/audit/?" + urlencode({"patient": str(patient.pk)}))
    expect(rows.first).to_be_visible()
    assert rows.count() >= 5  # enrolled, two tests, an attestation, the authorization, the refusal
    expect(page.locator("table.log")).not_to_contain_text("security.login")
    page.get_by_label("Show").select_option("security")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("main")).to_contain_text("No entry matches.")  # no security event about this patient
    page.get_by_label("Patient: name or program id").fill("")
    page.get_by_role("button", name="Search").click()
    expect(rows.first).to_contain_text("security.login")
    a.check("audit-security")

    a.go("/audit/?" + urlencode({"failed_check": "AUTHORIZATION_NOT_EXPIRED"}))
    rows.first.get_by_role("link", name="history").click()
    expect(page.locator("table")).to_contain_text("prescription.authorize")
    expect(page.locator("table")).to_contain_text("AUTHORIZATION_NOT_EXPIRED")
    a.check("prescription-history")
    page.get_by_role("link", name="Reports").click()
    page.get_by_label("Period").select_option("day")
    page.get_by_label("From (inclusive)").fill(str(timezone.localdate() - timedelta(days=10)))
    page.get_by_role("button", name="Show").click()
    # decisions by outcome and denials by failed check; nothing was dispensed, so no time to dispense
    figures = page.locator(".chart-figure")
    expect(figures).to_have_count(3)
    expect(page.locator("canvas[data-chart]")).to_have_count(2)
    expect(figures.nth(2)).to_contain_text("Nothing in this period")
    expect(figures.nth(1)).to_contain_text("AUTHORIZATION_NOT_EXPIRED")
    # every day of the range, those without a decision as zero
    assert figures.nth(0).locator("tbody tr").count() == 11
    assert page.evaluate("Array.from(document.querySelectorAll('canvas[data-chart]'))"
                         ".every(c => Chart.getChart(c) !== undefined && c.width > 0)")
    a.check("reports")


def test_another_pharmacys_rda_and_another_prescribers_patient_are_not_found(walk, parties, frp_prescription):
    theirs = parties["theirs"]
    rda_number = dispenses.dispense_authorization_request(
        actor=parties["ours"].users["pharmacist"], pharmacy=parties["ours"].pharmacy,
        authorization_number=frp_prescription.authorization_number,
        date_of_birth=frp_prescription.patient.date_of_birth, ndc=POMALIDOMIDE_4MG, quantity=28, days_supply=28,
        now=timezone.now())[2].rda_number

    w = walk("other-pharmacy")
    w.sign_in(theirs.users["pharmacist"].username)
    response = w.page.goto(f"{w.base}/dispenses/{rda_number}/")
    assert response.status == 404
    expect(w.page.get_by_role("heading", name="Not found")).to_be_visible()
    w.check("not-found", status=404)

    p = walk("other-prescriber")
    p.sign_in(theirs.users["prescriber"].username)
    assert p.page.goto(f"{p.base}/patients/{frp_prescription.patient_id}/").status == 404
    assert p.page.goto(f"{p.base}/prescriptions/{frp_prescription.pk}/").status == 404
    # the same as the API answers them
    assert p.page.request.get(f"{p.base}/api/v1/patients/{frp_prescription.patient_id}/").status == 404


def test_a_wrong_password_is_told_plainly_and_signing_out_ends_the_session(walk, parties):
    w = walk("login")
    page = w.page
    w.go("/login")
    w.check("login")
    page.get_by_label("Username").fill(parties["auditor"].username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("did not match")
    w.sign_in(parties["auditor"].username)
    expect(page.get_by_role("heading", name="Compliance log")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    w.go("/audit/")
    assert re.search(r"/login\?next=", page.url)


def test_an_ipledge_prescriber_enrolls_records_counseling_and_comprehension_and_obtains_an_authorization(
        walk, parties):
    isotretinoin = program_load(actor=None, data=json.loads((BUNDLED / "isotretinoin.json").read_text()),
                                now=timezone.now())[0]
    certification_create(actor=None, program=isotretinoin, prescriber=parties["ours"].prescriber,
                         now=timezone.now() - timedelta(days=60))
    w = walk("ipledge")
    w.sign_in(parties["ours"].users["prescriber"].username)
    page = w.page
    page.get_by_role("link", name="Enroll a patient").click()
    page.get_by_label("Program", exact=True).select_option("isotretinoin")
    page.get_by_label("First name").fill("Iris")
    page.get_by_label("Last name").fill("Pledge")
    page.get_by_label("Date of birth").fill("2001-04-09")
    page.get_by_label("Risk category (of the program chosen above)").select_option("CAN_GET_PREGNANT")
    page.get_by_label("Where the patient is tested (time zone)").select_option("America/New_York")
    page.get_by_label("Patient-Prescriber Agreement signed on").fill(str(timezone.localdate()))
    page.get_by_role("button", name="Enroll").click()
    expect(page.get_by_role("status")).to_contain_text("is enrolled")
    # the program's own words and numbers
    expect(page.get_by_text("Home", exact=True)).to_be_visible()  # a setting iPLEDGE counts during therapy
    expect(page.get_by_label("Partner's vasectomy")).to_be_visible()
    expect(page.get_by_label("Comprehension questions completed at")).to_be_visible()
    w.check("patient-new")

    now = timezone.now()
    for ago in (timedelta(days=21), timedelta(days=1)):
        page.get_by_label("Collected at").fill(local_input(now - ago))
        page.get_by_label("Negative").check()
        page.get_by_label("Sensitivity (mIU/mL)").fill("25")
        page.get_by_label("Laboratory").check()
        page.get_by_role("button", name="Record test").click()
        expect(page.get_by_role("status")).to_contain_text("pregnancy test is recorded")
    page.get_by_label("Intrauterine device (IUD)").check()
    page.get_by_label("Male latex condom").check()
    page.get_by_label("Contraception (or abstinence) started on").fill(str(timezone.localdate() - timedelta(days=35)))
    page.get_by_role("button", name="Record attestation").click()
    expect(page.get_by_role("status")).to_contain_text("attestation is recorded")
    page.get_by_role("button", name="Record counseling attestation").click()
    expect(page.get_by_role("status")).to_contain_text("attestation is recorded")
    page.get_by_label("Comprehension questions completed at").fill(local_input(now - timedelta(hours=1)))
    page.get_by_role("button", name="Record the comprehension questions").click()
    expect(page.get_by_role("status")).to_contain_text("survey is recorded")
    w.check("patient-ready")

    expect(page.get_by_label("Days' supply")).to_have_value("30")  # the program's maximum
    expect(page.get_by_label(re.compile("Isotretinoin 20 mg"))).to_be_checked()  # its one product
    expect(page.get_by_label("Quantity (capsules)")).to_have_value("30")  # one package of it
    page.get_by_role("button", name="Request authorization").click()
    number = page.get_by_test_id("authorization-number")
    expect(number).to_be_visible()
    prescription = Prescription.objects.get(patient__last_name="Pledge")
    assert prescription.patient.time_zone == "America/New_York"
    assert prescription.rule_set == "isotretinoin@2026-08-08" and prescription.days_supply == 30
    w.check("authorization")
