from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from rems.interfaces.api import health

handler400 = "rems.config.handlers.handler400"
handler403 = "rems.config.handlers.handler403"
handler404 = "rems.config.handlers.handler404"
handler500 = "rems.config.handlers.handler500"

# Most requests are the API's: its prefix is tried first, so that they are not matched against every page of the
# portal before. No page of the portal or the EHR endpoints starts with `api/`.
urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("rems.interfaces.api.urls")),
    path("", include("rems.interfaces.ehr.urls")),
    path("", include("rems.interfaces.portal.urls")),
    path("admin/", admin.site.urls),
]
