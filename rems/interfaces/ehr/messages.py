"""Reading what an EHR sends: a JSON object of bounded depth and size, and the codes, identifiers and names in
the FHIR resources parsed from it (R4, with `fhir.resources`)."""

import json

from django.core.exceptions import RequestDataTooBig
from pydantic import ValidationError

MAX_BYTES = 1_000_000


class Unreadable(ValueError):
    """The body is not a JSON object this service can read; the message says why, for a 4xx answer."""


def json_object(request):
    """The request's body as a JSON object, or Unreadable (never a 5xx: too large, not UTF-8, not JSON, nested too
    deep, or not an object)."""
    try:
        body = request.body
    except RequestDataTooBig:
        raise Unreadable("The body is too large.") from None
    if len(body) > MAX_BYTES:
        raise Unreadable("The body is too large.")
    try:
        data = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise Unreadable("The body is not UTF-8.") from None
    except RecursionError:
        raise Unreadable("The JSON is nested too deeply.") from None
    except ValueError as exc:
        raise Unreadable(f"The body is not JSON ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise Unreadable("The body is a JSON object.")
    return data


def resource(model, data, what):
    """`data` parsed as the FHIR R4 resource `model`, or Unreadable saying what is wrong with it (`what` names it
    in the message)."""
    if not isinstance(data, dict):
        raise Unreadable(f"{what}: a FHIR R4 {model.get_resource_type()} resource.")
    try:
        return model.parse_obj(data)
    except ValidationError as exc:
        error = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
        why = f" ({where}: {error.get('msg', 'invalid')})" if where else ""
        raise Unreadable(f"{what}: not a valid FHIR R4 {model.get_resource_type()} resource{why}.") from None
    except (LookupError, ValueError, TypeError, RecursionError):
        # an unknown resourceType among the contained or nested resources, or a value of no FHIR type
        raise Unreadable(f"{what}: not a valid FHIR R4 {model.get_resource_type()} resource.") from None


def codings(concept):
    """(system, code) of each coding of a CodeableConcept (or none)."""
    return [(c.system, c.code) for c in (concept.coding or [])] if concept is not None else []


def medication_codings(resource):
    """The codings of a Medication, or of a MedicationRequest's medication: its CodeableConcept, or the Medication
    it references among its contained resources."""
    if resource is None:
        return []
    if resource.resource_type == "Medication":
        return codings(resource.code)
    if resource.resource_type == "MedicationRequest":
        if resource.medicationCodeableConcept is not None:
            return codings(resource.medicationCodeableConcept)
        reference = resource.medicationReference.reference if resource.medicationReference else None
        for contained in resource.contained or []:
            if reference and reference == f"#{contained.id}" and contained.resource_type == "Medication":
                return codings(contained.code)
    return []


def patient_identity(patient):
    """(identifiers as (system, value), family name, first given name, birth date) of a FHIR Patient; the
    official name first."""
    identifiers = [(i.system, i.value) for i in (patient.identifier or []) if i.system and i.value]
    names = sorted(patient.name or [], key=lambda n: n.use != "official")
    family = names[0].family if names and names[0].family else ""
    given = names[0].given[0] if names and names[0].given else ""
    return identifiers, family, given, patient.birthDate
