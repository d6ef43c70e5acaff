"""ansible-doc shows every module, and the role's defaults match its
argument specs exactly."""

import os
import subprocess

import pytest
import yaml

from conftest import SOURCE_DIR

MODULES = ["qemu_migration_tls_config", "qemu_migration_tls_cert",
           "qemu_migration_tls_info", "qemu_migration_tls_ca",
           "qemu_migration_tls_migrate"]
ROLE = os.path.join(SOURCE_DIR, "roles", "qemu_migration_tls")


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_shows_module(module):
    completed = subprocess.run(
        ["ansible-doc", "-M", os.path.join(SOURCE_DIR, "module"), module],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert completed.returncode == 0, completed.stderr
    assert f"> {module.upper()}" in completed.stdout
    assert "OPTIONS" in completed.stdout
    assert "EXAMPLES" in completed.stdout
    assert "RETURN VALUES" in completed.stdout


def test_role_defaults_match_argument_specs():
    with open(os.path.join(ROLE, "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    with open(os.path.join(ROLE, "meta", "argument_specs.yml")) as handle:
        options = yaml.safe_load(handle)["argument_specs"]["main"]["options"]
    assert sorted(defaults) == sorted(options)
    for name, spec in options.items():
        assert spec.get("default") == defaults[name], name


def test_role_tasks_use_qualified_builtin_names():
    """Builtin modules are called by their fully qualified names."""
    builtin = {"assert", "command", "debug", "fail", "set_fact",
               "include_tasks", "import_tasks", "include_role", "meta",
               "template", "copy", "file", "stat", "shell"}
    folders = [os.path.join(ROLE, "tasks"), os.path.join(ROLE, "handlers"),
               os.path.join(SOURCE_DIR, "playbooks")]
    for folder in folders:
        for name in os.listdir(folder):
            if not name.endswith(".yml"):
                continue
            with open(os.path.join(folder, name)) as handle:
                document = yaml.safe_load(handle) or []
            tasks = []
            for item in document:
                tasks.append(item)
                for key in ("tasks", "handlers", "pre_tasks", "post_tasks"):
                    tasks.extend(item.get(key, []) or [])
            for task in tasks:
                short = builtin.intersection(task)
                assert not short, f"{name}: {task.get('name')} uses {short}"
