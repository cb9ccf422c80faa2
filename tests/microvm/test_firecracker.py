"""Firecracker's request bodies against its published API definition.

The definition is firecracker-microvm/firecracker `src/firecracker/swagger/firecracker.yaml`.
It is not part of this project: the test reads it when it is available (a path in
MAXWELL_FIRECRACKER_SWAGGER, or a git checkout of firecracker in
MAXWELL_FIRECRACKER_REPO) and otherwise checks against the fields cited below from
that file (swagger version 1.17.0-dev, commit 81b38b9dad60, definitions `Vm`,
`MachineConfiguration`, `BootSource`, `Vsock`, `Balloon`, `InstanceActionInfo`).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from maxwell.membrane import _firecracker as fc

# Cited from firecracker.yaml (see the module docstring): required keys, and each
# property's type (and enum / bounds where the definition gives them).
CITED: dict[str, dict[str, Any]] = {
    "Vm": {"required": ["state"],
           "properties": {"state": {"type": "string", "enum": ["Paused", "Resumed"]}}},
    "MachineConfiguration": {
        "required": ["mem_size_mib", "vcpu_count"],
        "properties": {"cpu_template": {}, "smt": {"type": "boolean"},
                       "mem_size_mib": {"type": "integer"},
                       "track_dirty_pages": {"type": "boolean"},
                       "vcpu_count": {"type": "integer", "minimum": 1, "maximum": 32},
                       "huge_pages": {"type": "string", "enum": ["None", "Transparent", "2M"]}}},
    "BootSource": {"required": ["kernel_image_path"],
                   "properties": {"boot_args": {"type": "string"},
                                  "initrd_path": {"type": "string"},
                                  "kernel_image_path": {"type": "string"}}},
    "Vsock": {"required": ["guest_cid", "uds_path"],
              "properties": {"guest_cid": {"type": "integer", "minimum": 3},
                             "uds_path": {"type": "string"}, "vsock_id": {"type": "string"}}},
    "Balloon": {"required": ["amount_mib", "deflate_on_oom"],
                "properties": {"amount_mib": {"type": "integer"},
                               "deflate_on_oom": {"type": "boolean"},
                               "stats_polling_interval_s": {"type": "integer"},
                               "free_page_hinting": {"type": "boolean"},
                               "free_page_reporting": {"type": "boolean"}}},
    "InstanceActionInfo": {"required": ["action_type"],
                           "properties": {"action_type": {"type": "string", "enum": [
                               "FlushMetrics", "InstanceStart", "SendCtrlAltDel"]}}},
}  # fmt: skip


def _swagger_text() -> str | None:
    path = os.environ.get("MAXWELL_FIRECRACKER_SWAGGER")
    if path and Path(path).is_file():
        return Path(path).read_text()
    repo = os.environ.get("MAXWELL_FIRECRACKER_REPO")
    if repo:
        out = subprocess.run(["git", "-C", repo, "show",
                              "HEAD:src/firecracker/swagger/firecracker.yaml"],
                             capture_output=True, text=True, check=False)  # fmt: skip
        if out.returncode == 0:
            return out.stdout
    return None


def definitions(text: str) -> dict[str, dict[str, Any]]:
    """`definitions:` of a swagger 2.0 YAML file: required keys and property schemas.

    A reader for the subset that file uses (block mappings and `- item` lists,
    two-space indents), enough for type, enum, minimum and maximum.
    """
    out: dict[str, dict[str, Any]] = {}
    lines = text.splitlines()
    start = lines.index("definitions:")
    name = prop = None
    section = listing = None
    for raw in lines[start + 1 :]:
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        indent = len(raw) - len(raw.lstrip())
        line = raw.strip()
        if indent == 0:
            break
        if indent == 2 and line.endswith(":"):
            name = line[:-1]
            out[name] = {"required": [], "properties": {}}
            section = prop = listing = None
        elif indent == 4 and name:
            key = line.split(":", 1)[0]
            section = key if key in ("required", "properties") else None
            prop = listing = None
        elif name and section == "required" and line.startswith("- "):
            out[name]["required"].append(line[2:].strip().strip('"'))
        elif name and section == "properties":
            if indent == 6 and line.endswith(":"):
                prop = line[:-1]
                out[name]["properties"][prop] = {}
                listing = None
            elif indent == 8 and prop:
                key, _, val = line.partition(":")
                val = val.strip().strip('"')
                listing = key if key == "enum" and not val else None
                if key in ("type",):
                    out[name]["properties"][prop][key] = val
                elif key in ("minimum", "maximum"):
                    out[name]["properties"][prop][key] = int(val)
                elif key == "enum":
                    out[name]["properties"][prop]["enum"] = []
            elif indent >= 10 and prop and listing == "enum" and line.startswith("- "):
                out[name]["properties"][prop]["enum"].append(line[2:].strip().strip('"'))
    return out


@pytest.fixture(scope="module")
def schema() -> dict[str, dict[str, Any]]:
    text = _swagger_text()
    if text is None:
        return CITED
    defs = definitions(text)
    for name in CITED:  # the file still defines what we send
        assert name in defs, name
    return defs


def _bodies() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("MachineConfiguration", fc.machine_config(3, 256)),
        ("MachineConfiguration", fc.machine_config(1, 128)),
        ("BootSource", fc.boot_source(Path("/k/vmlinux"), Path("/k/initrd"), "console=ttyS0")),
        ("Vsock", fc.vsock(Path("/run/vm/v.sock"))),
        ("Balloon", fc.balloon()),
        ("InstanceActionInfo", fc.start()),
        ("Vm", fc.vm_state(True)),
        ("Vm", fc.vm_state(False)),
    ]


_TYPES = {"integer": int, "boolean": bool, "string": str}


@pytest.mark.parametrize(("definition", "body"), _bodies())
def test_body_matches_the_api_definition(schema: dict[str, dict[str, Any]], definition: str,
                                         body: dict[str, Any]) -> None:  # fmt: skip
    d = schema[definition]
    assert set(d["required"]) <= set(body), (definition, body)
    for key, value in body.items():
        assert key in d["properties"], f"{definition} has no property {key!r}"
        p = d["properties"][key]
        if "type" in p:
            t = _TYPES[p["type"]]
            assert isinstance(value, t) and not (t is int and isinstance(value, bool)), key
        if "enum" in p:
            assert value in p["enum"], (key, value)
        if "minimum" in p:
            assert value >= p["minimum"], key
        if "maximum" in p:
            assert value <= p["maximum"], key


def test_vcpu_count_is_one_or_even() -> None:
    # "Number of vCPUs (either 1 or an even number)" (MachineConfiguration.vcpu_count)
    assert fc.machine_config(1, 64)["vcpu_count"] == 1
    assert fc.machine_config(3, 64)["vcpu_count"] == 4
    assert {(m, p) for m, p, _ in fc.REQUESTS} >= {("PATCH", "/vm"), ("PUT", "/actions")}


def test_the_definition_reader_on_the_cited_shape() -> None:
    text = "definitions:\n  Vm:\n    type: object\n    required:\n      - state\n" \
           "    properties:\n      state:\n        type: string\n        enum:\n" \
           "          - Paused\n          - Resumed\n"
    assert definitions(text) == {"Vm": CITED["Vm"]}


def test_unavailable_here_says_why(tmp_path: Path) -> None:
    a = fc.availability(tmp_path)
    if a.ok:
        pytest.skip("a firecracker binary is installed here")
    assert "firecracker" in a.reason


def test_the_cited_fields_are_the_files() -> None:
    text = _swagger_text()
    if text is None:
        pytest.skip("firecracker.yaml not available: set MAXWELL_FIRECRACKER_SWAGGER=<file> or "
                    "MAXWELL_FIRECRACKER_REPO=<git checkout of firecracker-microvm/firecracker>")
    defs = definitions(text)
    for name, cited in CITED.items():
        assert defs[name] == cited, name
