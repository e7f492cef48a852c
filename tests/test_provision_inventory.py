"""The class inventory and the kit bundle: no SSH needed."""

from __future__ import annotations

import tarfile

import pytest

from debuglab.catalog.model import Catalog
from debuglab.provision import inventory, upload
from debuglab.provision.errors import InventoryError

GOOD = '''[class]
bugs = "all"
known_hosts = "kh"
key_file = "keys/id"

[[host]]
address = "stack@10.0.0.1"
profile = "devstack"
student = "alice"

[[host]]
address = "debian@lab-2.example.org:2222"
profile = "lab"
student = "bob"
bugs = ["num-instances-off-by-one"]
'''


@pytest.fixture
def catalog(kit):
    return Catalog.load(kit.bugs_dir)


def load(tmp_path, text, catalog=None):
    path = tmp_path / "class.toml"
    path.write_text(text)
    return inventory.load(path, catalog=catalog)


def test_example_inventory_is_valid_and_documents_every_setting(kit, catalog):
    inv = inventory.load(kit.root / "instructor" / "class.example.toml", catalog=catalog)
    assert [h.student for h in inv.hosts] == ["alice", "bob", "carol"]
    bob = inv.find("bob")
    assert (bob.user, bob.hostname, bob.port, bob.bugs) == ("stack", "203.0.113.12", 2222, ("num-instances-off-by-one",))
    assert inv.find("alice").port == 22 and inv.find("alice").bugs == ()
    assert dict(inv.devstack.services)["devstack@n-api"] == 4444
    assert inv.lab.cloud_command == "{debuglab} cloud start --dir {dir}"
    text = (kit.root / "instructor" / "class.example.toml").read_text()
    assert inv.lab.notebook_command == "{debuglab} notebook start --dir {dir}"
    assert inv.devstack == inventory.DevstackSettings()  # the example says what the defaults are
    for field in ("stack_dir", "venv_python", "systemd_dir", "restart_command", "known_hosts", "key_file",
                  "venv", "wheelhouse", "notebook_command", "journal_command", "clouds_yaml", "nova_conf",
                  "config_command"):
        assert field in text


def test_paths_are_relative_to_the_inventory(tmp_path, catalog):
    inv = load(tmp_path, GOOD, catalog)
    assert inv.known_hosts == tmp_path.resolve() / "kh"
    assert inv.hosts[0].key_file == tmp_path.resolve() / "keys" / "id"
    assert inv.find("lab-2.example.org:2222").student == "bob"


@pytest.mark.parametrize("change, line, words", [
    # a second host at the same address: named with both lines
    (lambda t: t.replace("debian@lab-2.example.org:2222", "other@10.0.0.1:22"), 11, ["duplicate host 10.0.0.1:22", "line 6"]),
    (lambda t: t.replace('student = "bob"', 'student = "alice"'), 14, ["duplicate student 'alice'", "line 6"]),
    (lambda t: t.replace("stack@10.0.0.1", "10.0.0.1"), 7, ["not user@host"]),
    (lambda t: t.replace('profile = "lab"', 'profile = "vm"'), 13, ["'profile' must be one of devstack, lab"]),
    (lambda t: t.replace('key_file = "keys/id"', 'key_file = "keys/id"\npassword = "hunter2"'), 5, ["no passwords"]),
    (lambda t: t.replace('["num-instances-off-by-one"]', '["no-such-bug"]'), 15, ["unknown bug(s) no-such-bug"]),
    (lambda t: t.replace('student = "bob"', 'student = "bob"\ncolour = "red"'), 15, ["unknown key 'colour'"]),
    (lambda t: t + '\n[devstack.services]\n"devstack@n-api" = 4444\n"devstack@n-sch" = 4444\n', 19, ["both use port 4444"]),
    (lambda t: t + '\n[devstack]\nrestart_command = "systemctl restart nova"\n', 18, ["must contain {units}"]),
    (lambda t: t + '\n[devstack]\nsudo = ""\njournal_command = "journalctl -n 5"\n', 19, ["'journal_command' must contain {unit}"]),
    (lambda t: t + '\n[devstack]\nconfig_command = "iniset /etc/nova/nova.conf {section} {option}"\n', 18,
     ["'config_command' must contain {section}, {option} and {value}"]),
    (lambda t: t.replace('bugs = "all"', 'bugs = "all'), 2, ["not valid TOML", "line 2"]),
])
def test_errors_name_the_line(tmp_path, catalog, change, line, words):
    with pytest.raises(InventoryError) as exc:
        load(tmp_path, change(GOOD), catalog)
    message = str(exc.value)
    if "TOML" not in message:
        assert f"class.toml:{line}:" in message
    for word in words:
        assert word in message


def test_no_hosts_is_an_error(tmp_path):
    with pytest.raises(InventoryError, match="no hosts"):
        load(tmp_path, "[class]\nbugs = 'all'\n")


def test_bundle_hash_is_stable_and_follows_content(kit_copy, tmp_path):
    first = upload.build(kit_copy, tmp_path / "cache", with_tools=False)
    again = upload.build(kit_copy, tmp_path / "cache", with_tools=False)
    assert first.sha256 == again.sha256 and first.path == again.path
    bug = next(kit_copy.bugs_dir.glob("*/bug.toml"))
    bug.write_text(bug.read_text() + "\n# edited\n")
    changed = upload.build(kit_copy, tmp_path / "cache", with_tools=False)
    assert changed.sha256 != first.sha256
    with tarfile.open(changed.path) as tar:
        names = tar.getnames()
    assert upload.HASH_FILE in names and upload.TOOLS_REQUIREMENTS in names
    assert any(n.startswith("bugs/") for n in names)
    # the instructor's solutions never leave this machine
    assert not any(n.startswith("instructor/") for n in names)
    tools = upload.tools_requirements(kit_copy)
    for name in upload.DEBUG_TOOLS:
        assert f"{name}==" in tools
    assert "--hash=sha256:" in tools
