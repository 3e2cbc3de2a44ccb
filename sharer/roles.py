"""Who may do what: four roles, each a set of permissions (pure: no I/O).

``viewer`` reads; ``editor`` composes, shares (accounts that need sign-off wait for it), retries,
cancels, reschedules and resubmits; ``approver`` (the chief editor) also approves, rejects and edits
before approving; ``admin`` also manages API tokens. Configs written for the original two roles
(``editor``, ``viewer``) keep their meaning.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    READ = "read"
    SHARE = "share"  # compose, share, retry, cancel, reschedule, mark posted, resubmit
    APPROVE = "approve"  # approve, reject, edit before approving
    AUDIT = "audit"  # read the audit log
    ADMIN = "admin"  # users' API tokens


class Role(StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


P = Permission
GRANTS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({P.READ}),
    Role.EDITOR: frozenset({P.READ, P.SHARE}),
    Role.APPROVER: frozenset({P.READ, P.SHARE, P.APPROVE, P.AUDIT}),
    Role.ADMIN: frozenset(Permission),
}
ROLES = tuple(str(r) for r in Role)


def can(role: str, permission: Permission) -> bool:
    return permission in GRANTS.get(Role(role), frozenset()) if role in ROLES else False
