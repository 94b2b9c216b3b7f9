"""The in-memory directory: sample data, nesting, deletes and speed at scale."""

from __future__ import annotations

import pytest

from portal.dev.emulator import Emulator, SampleData
from portal.dev.emulator.directory import Directory


def test_sample_data(emu: Emulator, sample: SampleData) -> None:
    assert emu.directory.tenant(sample.tenant_id).name == "Contoso"
    admins = sample.portal_admins_group_id
    assert admins in emu.transitive_group_ids(sample.users["patti"])
    assert len(emu.transitive_group_ids(sample.users["megan"])) > 250
    assert emu.transitive_group_ids(sample.users["lee"]) == []
    alex = emu.user(sample.users["alex"])
    assert (alex.user_type, alex.email) == ("Guest", "alex@fabrikam.com") and alex.idp
    assert "#EXT#@" in (alex.upn or "")
    assert emu.group(sample.groups["Engineering"]).display_name == "Engineering"


def test_sample_ids_are_stable(
    sample: SampleData, tmp_path_factory: pytest.TempPathFactory
) -> None:
    other = Emulator(state_dir=tmp_path_factory.mktemp("stable"))
    again = other.load_sample_data("c", "s", ["http://127.0.0.1:5000/auth/callback"])
    assert again.users == sample.users and again.groups == sample.groups


def test_nesting_cycle_terminates() -> None:
    directory = Directory()
    tenant = directory.add_tenant(None, "Cyclic")
    a, b = directory.add_group(tenant, "A"), directory.add_group(tenant, "B")
    user = directory.add_user(tenant, "U", "u@cyclic.test")
    directory.add_member(a, b)
    directory.add_member(b, a)
    directory.add_member(a, user)
    assert set(directory.transitive_group_ids(user)) == {a, b}


def test_delete_group_removes_memberships(emu: Emulator) -> None:
    parent, child = emu.add_group(None, "Parent"), emu.add_group(None, "Child")
    user = emu.add_user(None, "Del User", "del@contoso.onmicrosoft.com")
    emu.add_member(parent, child)
    emu.add_member(child, user)
    emu.delete_group(child)
    assert emu.transitive_group_ids(user) == []
    with pytest.raises(KeyError):
        emu.group(child)


def test_cross_tenant_membership_is_refused(emu: Emulator) -> None:
    other = emu.add_tenant(name="Elsewhere")
    group = emu.add_group(other, "Elsewhere Group")
    user = emu.add_user(None, "Home User", "home@contoso.onmicrosoft.com")
    with pytest.raises(ValueError):
        emu.add_member(group, user)


def test_scale(emu: Emulator) -> None:
    tenant = emu.add_tenant(name="Scale")
    groups = [emu.add_group(tenant, f"G{n}") for n in range(2000)]
    users = [emu.add_user(tenant, f"U{n}", f"u{n}@scale.test") for n in range(3000)]
    for n, user in enumerate(users):
        emu.add_members(groups[n % 2000], [user])
    for n in range(1, 2000):
        emu.add_member(groups[n - 1], groups[n])  # a 2,000-deep chain
    assert len(emu.transitive_group_ids(users[-1])) == 2999 % 2000 + 1  # its group and above
