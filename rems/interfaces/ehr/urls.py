from django.urls import path

from . import cds, fhir

urlpatterns = [
    path("fhir/GuidanceResponse/$rems-etasu", fhir.rems_etasu, name="fhir-rems-etasu"),
    path("cds-services", cds.discovery, name="cds-discovery"),
    path(f"cds-services/{cds.SERVICE_ID}", cds.order_sign, name="cds-order-sign"),
    path(f"cds-services/{cds.SELECT_SERVICE_ID}", cds.order_select, name="cds-order-select"),
]
