"""The REMS inside the prescriber's EHR, as the program sees it: the EHRs registered to call its CDS Hooks
services (an issuer and its public key), the token ids they have used, the identifiers an EHR gives the patient
of an enrollment, which program a coded medication belongs to, and the log entry of each query. The FHIR and
CDS Hooks messages themselves are the interface's (`rems.interfaces.ehr`)."""

import uuid

import jwt
from django.db import IntegrityError, transaction
from django.db.models import Q

from rems.compliance_log.actions import Action
from rems.compliance_log.writer import log_entry_write
from rems.core.errors import ActionRefused
from rems.core.identifiers import MalformedIdentifier, ndc_parse

from .certifications import party_bar_check
from .models import CdsClient, CdsTokenUse, PatientIdentifier, Product, Program
from .validation import InvalidValue

# Code systems of the medications an EHR orders, and ours for a patient's enrollment.
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
NDC = "http://hl7.org/fhir/sid/ndc"
OUR_PATIENT = "urn:rems:patient"
NPI = "http://hl7.org/fhir/sid/us-npi"

# The keys an EHR may sign with (CDS Hooks 2.0): the key type decides the algorithm.
_PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}
MIN_RSA_BITS = 2048


class ClientExists(ActionRefused):
    """An issuer has one live registration: to change its key, retire the registration, then register again."""

    code = "client_exists"


class CannotRetireClient(ActionRefused):
    pass


def public_key_algorithm(jwk):
    """The signing algorithm of an EHR's public key, given as a JWK: ES384 for an EC key on P-384, RS384 for an
    RSA key of at least 2048 bits. Anything else (a private key, another curve or type, a short key) is refused."""
    if not isinstance(jwk, dict):
        raise InvalidValue("jwk: the EHR's public key as a JSON Web Key (an object).", field="jwk")
    if _PRIVATE_MEMBERS & set(jwk):
        raise InvalidValue("jwk: send the public key only; this one holds private parts. Keep those at the EHR.",
                           field="jwk")
    algorithm = {"EC": "ES384", "RSA": "RS384"}.get(jwk.get("kty"))
    if algorithm is None:
        raise InvalidValue("jwk: an EC key on P-384 (ES384) or an RSA key of 2048 bits or more (RS384).", field="jwk")
    try:
        key = jwt.PyJWK(jwk, algorithm=algorithm).key
    except (jwt.exceptions.PyJWKError, jwt.exceptions.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
        raise InvalidValue(f"jwk: not a usable {jwk.get('kty')} public key ({exc}).", field="jwk") from None
    if algorithm == "ES384" and getattr(key, "curve", None) is not None and key.curve.name != "secp384r1":
        raise InvalidValue("jwk: an EC key must be on the P-384 curve (ES384).", field="jwk")
    if algorithm == "RS384" and key.key_size < MIN_RSA_BITS:
        raise InvalidValue(f"jwk: an RSA key of at least {MIN_RSA_BITS} bits.", field="jwk")
    return algorithm


@transaction.atomic
def cds_client_register(*, actor, issuer, jwk, now):
    """The program administrator registers an EHR: the issuer of its JWTs and its public key."""
    if not isinstance(issuer, str) or not issuer.strip() or len(issuer) > 255:
        raise InvalidValue("issuer: the `iss` of the EHR's JWTs, 1 to 255 characters.", field="issuer")
    algorithm = public_key_algorithm(jwk)
    public = {name: value for name, value in jwk.items() if name not in _PRIVATE_MEMBERS}
    try:
        with transaction.atomic():
            client = CdsClient.objects.create(issuer=issuer, jwk=public, algorithm=algorithm, registered_at=now,
                                              registered_by=actor)
    except IntegrityError:
        raise ClientExists(f"The issuer {issuer!r} is already registered.") from None
    log_entry_write(actor=actor, action=Action.CDS_CLIENT_REGISTER, outcome="registered", object_type="cds_client",
                    object_id=client.pk, now=now, detail={"issuer": issuer, "algorithm": algorithm})
    return client


def cds_client_for(issuer):
    """The EHR registered with this issuer and not retired, or None."""
    if not isinstance(issuer, str) or not issuer:
        return None
    return CdsClient.objects.filter(issuer=issuer, retired_at__isnull=True).first()


@transaction.atomic
def cds_client_retire(*, actor, client, reason, now):
    """The program administrator retires an EHR's registration (a key replaced or compromised, an EHR gone): its
    tokens are refused from now on."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidValue("Give the reason the registration is retired.", field="reason")
    if not CdsClient.objects.filter(pk=client.pk, retired_at__isnull=True).update(retired_at=now,
                                                                                   retired_reason=reason[:500]):
        raise CannotRetireClient(f"The registration of {client.issuer} is already retired.")
    log_entry_write(actor=actor, action=Action.CDS_CLIENT_RETIRE, outcome="retired", object_type="cds_client",
                    object_id=client.pk, now=now, detail={"issuer": client.issuer, "reason": reason})
    client.refresh_from_db()
    return client


def token_id_use(*, issuer, jti, expires_at):
    """Record that the issuer's token `jti` was used; False when it already was (a replay)."""
    try:
        with transaction.atomic():
            CdsTokenUse.objects.create(issuer=issuer, jti=jti, expires_at=expires_at)
    except IntegrityError:
        return False
    return True


def token_uses_purge(*, now):
    """Forget the token ids whose tokens have expired (they can no longer be replayed). Returns how many."""
    return CdsTokenUse.objects.filter(expires_at__lt=now).delete()[0]


@transaction.atomic
def patient_identifier_link(*, actor, patient, system, value, now):
    """The prescriber's office links an identifier its EHR gives the patient (`system`, `value`) to her
    enrollment, so that the EHR's next request finds it. Linking it again changes nothing."""
    party_bar_check(actor=actor, program=patient.program)
    for name, text in (("system", system), ("value", value)):
        if not isinstance(text, str) or not text.strip() or len(text) > 255:
            raise InvalidValue(f"{name}: 1 to 255 characters.", field=name)
    if system == OUR_PATIENT:
        raise InvalidValue(f"{OUR_PATIENT} is the service's own identifier of the enrollment; it needs no link.",
                           field="system")
    identifier, created = PatientIdentifier.objects.get_or_create(
        patient=patient, system=system, value=value, defaults={"linked_at": now, "linked_by": actor},
    )
    if created:
        log_entry_write(
            actor=actor, action=Action.PATIENT_IDENTIFIER_LINK, outcome="linked", object_type="patient_identifier",
            object_id=identifier.pk, program=patient.program.slug, patient_id=patient.pk,
            prescriber_id=patient.prescriber_id, now=now, detail={"system": system},
        )
    return identifier, created


def patients_identified(patients, identifiers, *, family="", given="", birth_date=None, by_name=False):
    """The enrollments among `patients` (a queryset the caller may see) that the EHR's patient is: by our own
    identifier (`urn:rems:patient`), by an identifier linked to the enrollment, or, when `by_name`, by family
    name, first given name and birth date. `identifiers` are (system, value) pairs."""
    found = Q(pk__in=[])
    for system, value in identifiers:
        if system == OUR_PATIENT:
            try:
                found |= Q(pk=uuid.UUID(str(value)))
            except ValueError:
                continue
        elif system and value:
            found |= Q(identifiers__system=system, identifiers__value=value)
    if by_name and family and given and birth_date is not None:
        found |= Q(last_name__iexact=family.strip(), first_name__iexact=given.strip(), date_of_birth=birth_date)
    return patients.filter(found).distinct()


def medication_programs(codings):
    """The programs of a medication coded by NDC or RxNorm: {program: product, or None when coded by its
    ingredient only}. `codings` are (system, code) pairs; codes of other systems, or unknown ones, count for
    nothing (a medication outside every program has none)."""
    found = {}
    ndcs, rxnorms = [], []
    for system, code in codings:
        if system == NDC:
            try:
                ndcs.append(ndc_parse(str(code)))
            except MalformedIdentifier:
                continue
        elif system == RXNORM and code:
            rxnorms.append(str(code))
    for product in Product.objects.select_related("program").filter(ndc__in=ndcs):
        found[product.program] = product
    for program in Program.objects.filter(rxnorm__in=rxnorms):
        found.setdefault(program, None)
    return found


def ehr_query_log(*, actor, action, outcome, now, patient=None, program=None, detail=None):
    """The log entry of a query from an EHR: what was asked and answered, nothing else recorded."""
    return log_entry_write(
        actor=actor, action=action, outcome=outcome, object_type="patient" if patient else "query",
        object_id=patient.pk if patient else "", program=program.slug if program else "",
        patient_id=patient.pk if patient else None, prescriber_id=patient.prescriber_id if patient else None,
        now=now, detail=detail or {},
    )
