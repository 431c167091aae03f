"""Named permission predicates: the one place that says who may do what.

Views guard endpoints with them (``@requires(can_manage_staff)``) and templates call them to
decide what to show. Each takes the user first and, where it matters, the object.
"""
from opsmgr.auth.models import Role


def _has_role(user, *roles):
    return bool(getattr(user, "is_authenticated", False)) and user.role in {r.value for r in roles}


def is_staff(user):
    """Any signed-in, active staff member."""
    return _has_role(user, *Role)


def can_change_own_password(user):
    return is_staff(user)


def can_view_nurse_home(user):
    return _has_role(user, Role.NURSE, Role.PHYSICIAN)


def can_view_coordinator_home(user):
    return _has_role(user, Role.COORDINATOR)


def can_view_physician_home(user):
    return _has_role(user, Role.PHYSICIAN)


def can_manage_staff(user):
    return _has_role(user, Role.ADMIN)


def can_change_staff(user, target):
    """Admins manage other accounts; nobody deactivates or demotes themselves."""
    return can_manage_staff(user) and target.id != user.id


def can_view_audit(user):
    return _has_role(user, Role.ADMIN)


def can_export_audit(user):
    return can_view_audit(user)


ALL = {
    name: fn for name, fn in globals().items() if name.startswith(("can_", "is_")) and callable(fn)
}
