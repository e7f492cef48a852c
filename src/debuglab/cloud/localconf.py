"""The lab's `local.conf`: configuration overrides for the mini-cloud's services, the way
DevStack takes them. DevStack's `local.conf` holds meta-sections such as

    [[post-config|$NOVA_CONF]]
    [filter_scheduler]
    enabled_filters = ComputeFilter,NumInstancesFilter
    max_instances_per_host = 2

whose options stack.sh writes into the service's config file with `iniset`. The cloud
does the same at every start and restart: the generated nova.conf (placement.conf,
keystone.conf) gets these options on top, so they survive restarts (the generated files
are rewritten each time) and `cloud reset` (local.conf lives beside lab.toml, not in
cloud/). `debuglab cloud config set|unset|show` edits it; so can a text editor.

Only post-config blocks are read; other phases (`[[local|localrc]]`) are DevStack's and
are ignored here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from debuglab.cloud.errors import LocalConfError
from debuglab.core.files import write_atomic

# DevStack's variables for the config files, and the file each is here (nova's
# services share one process, so nova-cpu.conf is nova.conf)
FILES = {"$NOVA_CONF": "nova.conf", "$NOVA_CPU_CONF": "nova.conf", "$PLACEMENT_CONF": "placement.conf",
         "$KEYSTONE_CONF": "keystone.conf", "$GLANCE_API_CONF": "glance-api.conf",
         "$NEUTRON_CONF": "neutron.conf", "$Q_PLUGIN_CONF_FILE": "ml2_conf.ini"}
SERVICE_FILES = {"nova": "$NOVA_CONF", "placement": "$PLACEMENT_CONF", "keystone": "$KEYSTONE_CONF",
                 "glance": "$GLANCE_API_CONF", "neutron": "$NEUTRON_CONF", "ml2": "$Q_PLUGIN_CONF_FILE"}
META = re.compile(r"^\[\[\s*([^|\]]+?)\s*\|\s*([^\]]+?)\s*\]\]\s*$")
SECTION = re.compile(r"^\[\s*([^\]\s]+)\s*\]\s*$")
OPTION = re.compile(r"^\s*([^#;=\s][^=]*?)\s*=\s*(.*?)\s*$")
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Override:
    file: str      # nova.conf, placement.conf, keystone.conf, glance-api.conf, neutron.conf, ml2_conf.ini
    section: str
    option: str
    value: str
    where: str     # local.conf:LINE, for messages


def _blocks(text: str) -> list[tuple[int, int, str, str]]:
    """(first line, end line (exclusive), phase, file variable) of each meta-section."""
    lines = text.splitlines()
    heads = [(i, m.group(1), m.group(2)) for i, line in enumerate(lines) if (m := META.match(line))]
    return [(i, heads[n + 1][0] if n + 1 < len(heads) else len(lines), phase, var)
            for n, (i, phase, var) in enumerate(heads)]


def read(path: Path) -> list[Override]:
    """Every post-config option of local.conf, in file order; errors name file and line."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    lines = text.splitlines()
    found: list[Override] = []
    for first, end, phase, var in _blocks(text):
        if phase != "post-config":
            continue
        if var not in FILES:
            raise LocalConfError(f"{path}:{first + 1}: [[post-config|{var}]] names no config file of the mini-cloud; "
                             f"use one of {', '.join(FILES)}")
        section = None
        for n in range(first + 1, end):
            line = lines[n].strip()
            if not line or line.startswith(("#", ";")):
                continue
            if m := SECTION.match(line):
                section = m.group(1)
                continue
            m = OPTION.match(lines[n])
            if not m or section is None:
                raise LocalConfError(f"{path}:{n + 1}: {'an option before any [section]' if m else 'not an option'}: "
                                 f"{lines[n]!r}; write `[section]` then `option = value` lines")
            found.append(Override(FILES[var], section, m.group(1), m.group(2), f"{path.name}:{n + 1}"))
    return found


def iniset(text: str, section: str, option: str, value: str | None) -> str:
    """DevStack's iniset (inidelete with value None) on a config file's text: the option
    replaced in place, or added at the end of its section (the section added if absent);
    comments and everything else kept."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if (m := SECTION.match(line.strip())) and m.group(1) == section),
                 None)
    if start is None:
        if value is None:
            return text
        body = text.rstrip("\n")
        return (body + "\n\n" if body else "") + f"[{section}]\n{option} = {value}\n"
    end = next((i for i in range(start + 1, len(lines)) if SECTION.match(lines[i].strip()) or META.match(lines[i])),
               len(lines))
    for i in range(start + 1, end):
        m = OPTION.match(lines[i])
        if m and not lines[i].lstrip().startswith(("#", ";")) and m.group(1) == option:
            if value is None:
                del lines[i]
            else:
                lines[i] = f"{option} = {value}"
            return "\n".join(lines) + "\n"
    if value is None:
        return text
    last = end
    while last > start + 1 and not lines[last - 1].strip():
        last -= 1
    lines.insert(last, f"{option} = {value}")
    return "\n".join(lines) + "\n"


def apply(text: str, overrides: list[Override], file: str) -> str:
    """The generated config file's text with local.conf's options for it on top."""
    for o in overrides:
        if o.file == file:
            text = iniset(text, o.section, o.option, o.value)
    return text


def _check_names(section: str, option: str) -> None:
    for kind, name in (("section", section), ("option", option)):
        if not NAME.match(name):
            raise LocalConfError(f"{kind} {name!r}: use letters, digits, '_', '-' or '.' (e.g. filter_scheduler)")


def set_option(path: Path, service: str, section: str, option: str, value: str | None) -> None:
    """Set (value None: remove) an option in local.conf's post-config block of a service,
    creating the file or the block as needed; the rest of the file is left as it was."""
    _check_names(section, option)
    if value is not None and "\n" in value:
        raise LocalConfError(f"the value of [{section}] {option} must be one line")
    var = SERVICE_FILES[service]
    text = path.read_text() if path.exists() else ""
    if path.exists():
        read(path)  # a broken file is reported before it is changed
    lines = text.splitlines()
    block = next(((first, end) for first, end, phase, v in _blocks(text) if phase == "post-config" and v == var), None)
    if block is None:
        if value is None:
            return
        head = "" if text.strip() else ("# debuglab: overrides of the mini-cloud's config files, DevStack style\n"
                                         "# (`debuglab cloud config set ...`; loaded at every cloud start/restart)\n")
        text = text.rstrip("\n") + ("\n\n" if text.strip() else "") + head + f"[[post-config|{var}]]\n"
        lines = text.splitlines()
        block = (len(lines) - 1, len(lines))
    first, end = block
    inner = iniset("\n".join(lines[first + 1:end]) + "\n", section, option, value).rstrip("\n").splitlines()
    rest = lines[end:]
    new = lines[:first + 1] + inner + ([""] if rest and inner and inner[-1].strip() else []) + rest
    write_atomic(path, "\n".join(new).rstrip("\n") + "\n")
