"""Demo data for `make demo`: the Contoso tenant with users, nested groups and directory roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .core import Emulator

# Fixed ids keep the demo reproducible across restarts (the portal's database remembers them).
DEMO_TENANT_ID = "3f6b7c1e-0d2a-4c8e-9a51-6f1d2b7e4c10"
DEMO_CLIENT_ID = "5b0c2d7e-8f4a-4e61-b3c9-2a7d9e1f6c38"
DEMO_CLIENT_SECRET = "demo-secret-not-for-production"  # noqa: S105 - public demo value, local only
FABRIKAM_TENANT_ID = "0c8a4f6e-1b2d-4e3f-8a9b-7c6d5e4f3a21"
_NAMESPACE = uuid.UUID("b6f1e2d3-4c5a-4b7e-9f80-1a2b3c4d5e6f")

GROUP_NAMES = (
    "All Staff",
    "Engineering",
    "Platform Team",
    "Sales",
    "Marketing",
    "Finance",
    "Human Resources",
    "Security Champions",
    "Project Phoenix",
    "Portal Admins",
)
# (child, parent): Platform Team ⊂ Engineering ⊂ All Staff, Sales ⊂ All Staff.
NESTING = (("Platform Team", "Engineering"), ("Engineering", "All Staff"), ("Sales", "All Staff"))
ROLES = {
    "Global Reader": "f2ef992c-3afb-46b9-b7cf-a126ee74c451",
    "User Administrator": "fe930be7-5e62-47db-91af-98c3a49a38b1",
}
OVERAGE_GROUPS = 250
# What each sample account shows in the portal, for the picker and the demo's banner.
NOTES = {
    "adele": "nested groups (Platform Team in Engineering in All Staff) and a directory role",
    "megan": "more groups than a token holds: the portal reads them from Graph (overage)",
    "lee": "no groups and no email address",
    "patti": "member of Portal Admins: a portal admin",
    "alex": "a guest from another organisation (Fabrikam)",
}


@dataclass
class SampleData:
    """Ids created by load_sample_data, for the demo and tests."""

    tenant_id: str
    client_id: str
    users: dict[str, str] = field(default_factory=dict)  # short key -> object id
    groups: dict[str, str] = field(default_factory=dict)  # display name -> object id
    roles: dict[str, str] = field(default_factory=dict)  # display name -> object id

    @property
    def portal_admins_group_id(self) -> str:
        """The object id of "Portal Admins" (for PORTAL_ADMIN_GROUP_IDS)."""
        return self.groups["Portal Admins"]


def stable_id(tenant_id: str, name: str) -> str:
    """Return the demo's deterministic object id for a named object in a tenant."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}:{name}"))


# key: (display name, UPN local part, mail, groups, roles)
USERS: dict[str, tuple[str, str, str | None, tuple[str, ...], tuple[str, ...]]] = {
    "adele": (
        "Adele Vance",
        "AdeleV",
        "AdeleV@contoso.com",
        ("Platform Team", "Security Champions", "Project Phoenix"),
        ("Global Reader",),
    ),
    "megan": ("Megan Bowen", "MeganB", "MeganB@contoso.com", ("Sales", "Marketing"), ()),
    "lee": ("Lee Gu", "LeeG", None, (), ()),
    "patti": (
        "Patti Fernandez",
        "PattiF",
        "PattiF@contoso.com",
        ("Portal Admins", "Finance"),
        ("User Administrator",),
    ),
}


def _groups(emu: Emulator, data: SampleData) -> None:
    tid = data.tenant_id
    for name in GROUP_NAMES:
        data.groups[name] = emu.add_group(tid, name, object_id=stable_id(tid, name))
    for child, parent in NESTING:
        emu.add_member(data.groups[parent], data.groups[child])
    for name, template in ROLES.items():
        data.roles[name] = emu.add_directory_role(tid, name, template, stable_id(tid, name))


def _users(emu: Emulator, data: SampleData, domain: str) -> None:
    tid = data.tenant_id
    for key, (name, local, mail, groups, roles) in USERS.items():
        oid = emu.add_user(
            tid, name, f"{local}@{domain}", email=mail, object_id=stable_id(tid, key)
        )
        data.users[key] = oid
        for group in groups:
            emu.add_member(data.groups[group], oid)
        for role in roles:
            emu.add_member(data.roles[role], oid)


def _guest(emu: Emulator, data: SampleData, domain: str) -> None:
    tid = data.tenant_id
    oid = emu.add_user(
        tid,
        "Alex Wilber (Guest)",
        f"alex_fabrikam.com#EXT#@{domain}",
        email="alex@fabrikam.com",
        object_id=stable_id(tid, "alex"),
        user_type="Guest",
        idp=f"https://sts.windows.net/{FABRIKAM_TENANT_ID}/",
    )
    data.users["alex"] = oid
    emu.add_member(data.groups["Project Phoenix"], oid)


def _overage(emu: Emulator, data: SampleData) -> None:
    # Megan is in more groups than fit in a token, so her sign-in takes the Graph overage path.
    tid, megan = data.tenant_id, data.users["megan"]
    for number in range(1, OVERAGE_GROUPS + 1):
        name = f"Project {number:03d}"
        data.groups[name] = emu.add_group(tid, name, object_id=stable_id(tid, name))
        emu.add_member(data.groups[name], megan)


def load(
    emu: Emulator,
    tenant_id: str,
    client_id: str,
    client_secret: str,
    redirect_uris: list[str],
    post_logout_redirect_uris: list[str],
) -> SampleData:
    """Create the Contoso demo tenant, its app registration, groups and users."""
    if emu.directory.find_tenant(tenant_id) is None:
        emu.add_tenant(tenant_id, "Contoso")
    tid = emu.directory.tenant(tenant_id).id
    domain = emu.directory.tenant(tid).domain
    emu.register_client(
        client_id,
        client_secret,
        redirect_uris,
        tid,
        post_logout_redirect_uris=post_logout_redirect_uris,
        display_name="Portal (demo)",
    )
    data = SampleData(tenant_id=tid, client_id=client_id)
    _groups(emu, data)
    _users(emu, data, domain)
    _guest(emu, data, domain)
    _overage(emu, data)
    _notes(emu, data)
    return data


def _notes(emu: Emulator, data: SampleData) -> None:
    # The portal adds everyone to its built-in "All users", so its count is one more than Entra's.
    for key, oid in data.users.items():
        count = len(emu.transitive_group_ids(oid)) + 1
        plural = "group" if count == 1 else "groups"
        emu.account_notes[oid] = f"{NOTES[key]}; {count} {plural} in the portal"
