"""The REMS inside the prescriber's EHR: FHIR `GuidanceResponse/$rems-etasu` and CDS Hooks (`order-sign`), from
the same gate engine as the API and the portal (docs/ehr.md)."""
