"""What every page of the admin site shares: only program administrators enter; every view is read-only; a
change of state is an action that asks for a reason (or a program) on an intermediate page, then calls a
service once per selected row and reports a refusal as a message for that row. No model form ever saves.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import model_ngettext
from django.contrib.auth.models import Group
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone

from accounts.models import Role
from rems.core.errors import ActionRefused
from rems.program.models import Program

REASON_MAX_LENGTH = 500  # the length of `status_reason` on certifications and patients


def is_program_admin(user):
    # The staff flag alone is not enough: a user marked staff by mistake (an auditor, say) must not reach it.
    return bool(user.is_active and user.is_staff and getattr(user, "role", None) == Role.ADMIN)


admin.site.has_permission = lambda request: is_program_admin(request.user)
admin.site.site_header = "REMS program administration"
admin.site.site_title = "REMS administration"
admin.site.index_title = "Program records"
# Access follows the role, not Django's groups and permissions: a group would only suggest otherwise.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Views for the program administrator; never an add, change or delete form that saves."""

    def has_module_permission(self, request):
        return is_program_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_program_admin(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_manage_permission(self, request):
        """Checked for the actions (`allowed_permissions = ("manage",)`) and the upload view."""
        return is_program_admin(request.user)

    def describe(self, obj):
        """How a row is named in messages and on the intermediate page."""
        return str(obj)


# --- Actions with an intermediate page --------------------------------------------------------------------
class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text="Required. Written to the compliance log with the change.",
    )


class ProgramChoiceForm(forms.Form):
    program = forms.ModelChoiceField(queryset=Program.objects.order_by("slug"), empty_label=None)


def confirm_and_run(modeladmin, request, queryset, *, form_class, title, done, run):
    """Show the intermediate page until its form is valid, then call `run(obj, data, actor, now)` for each row.

    A refused row is reported and the others go on: each service call is its own transaction, so a refusal
    leaves that row exactly as it was.
    """
    form = form_class(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        rows = list(queryset)
        if not rows:
            # Rows changed since the list was shown (a lock cleared meanwhile, say) fall out of its filter.
            modeladmin.message_user(request, "None of the selected rows is listed any more; nothing was changed.",
                                    messages.WARNING)
            return None
        now, succeeded = timezone.now(), 0
        for obj in rows:
            try:
                run(obj, form.cleaned_data, request.user, now)
            except ActionRefused as exc:
                modeladmin.message_user(request, f"{modeladmin.describe(obj)}: {exc.message}", messages.ERROR)
            else:
                succeeded += 1
        if succeeded:
            modeladmin.message_user(
                request, f"{done} {succeeded} {model_ngettext(modeladmin.opts, succeeded)}; "
                         "each change is in the compliance log.", messages.SUCCESS,
            )
        return None
    opts = modeladmin.opts
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": opts,
        "form": form,
        "rows": [(obj.pk, modeladmin.describe(obj)) for obj in queryset],
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "media": modeladmin.media + form.media,
    }
    return TemplateResponse(request, "admin/rems/action_confirmation.html", context)


def form_action(name, *, description, title, done, run, form_class=ReasonForm):
    """An admin action named `name` that asks for `form_class` first, then calls `run` per row."""

    def action(modeladmin, request, queryset):
        return confirm_and_run(modeladmin, request, queryset, form_class=form_class, title=title, done=done,
                               run=run)

    action.__name__ = name
    return admin.action(description=description, permissions=["manage"])(action)
