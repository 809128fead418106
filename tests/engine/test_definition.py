"""Workflow definitions: the shipped ones load; invalid ones are refused naming file, path inside it and problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definition import load_definition, parse_definition, to_mermaid
from engine.errors import DefinitionError
from engine.registry import Registry
from workflows.registry import WORKFLOWS_DIR, build_registry

VALID = """\
name: sample
version: 1
title: {fi: Näyte, sv: Prov, en: Sample}
initial: open
states:
  open:
    description: Waiting for a decision.
  done:
    description: Decided.
    final: true
transitions:
  - trigger: close
    source: open
    dest: done
    roles: [coordinator]
    conditions: [ready]
"""


def _write(tmp_path: Path, text: str, name: str = "sample.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _refusal(tmp_path: Path, text: str) -> str:
    path = _write(tmp_path, text)
    with pytest.raises(DefinitionError) as info:
        load_definition(path)
    message = info.value.detail
    assert str(path) in message, message
    return message


def test_shipped_definitions_load_with_their_guards() -> None:
    registry = build_registry()
    assert {"agreement", "agreement_party"} <= set(registry.names())
    agreement = registry.machine("agreement").definition
    assert agreement.initial == "draft"
    assert set(agreement.final_states) == {"withdrawn", "terminated"}
    party = registry.machine("agreement_party").definition
    assert party.parent == "agreement"
    assert party.triggers_from("approved")[:2] == ["sign", "reinvite"]  # definition order, no repeats
    assert party.triggers_from("released") == []


def test_every_state_says_what_it_means() -> None:
    for folder in ("agreement", "agreement_party"):
        for path in (WORKFLOWS_DIR / folder).glob("*.yaml"):
            defn = load_definition(path)
            assert all(s.description.strip() for s in defn.states.values()), path


def test_valid_sample_loads_and_draws(tmp_path: Path) -> None:
    defn = load_definition(_write(tmp_path, VALID))
    assert defn.transitions[0].event_name == "Close"
    diagram = to_mermaid(defn)
    assert "[*] --> open" in diagram and "open --> done: close" in diagram and "done --> [*]" in diagram


@pytest.mark.parametrize(("old", "new", "line", "path", "problem"), [
    ("    dest: done\n", "    dest: finished\n", 14, "transitions[0].dest", "unknown state 'finished'"),
    ("    source: open\n", "    source: [open, limbo]\n", 13, "transitions[0].source", "unknown state 'limbo'"),
    ("    roles: [coordinator]\n", "    roles: [coordinator, mayor]\n", 15, "transitions[0].roles",
     "unknown role 'mayor'"),
    ("    source: open\n", "    source: done\n", 13, "transitions[0].source",
     "'done' is final and cannot be left"),
    ("initial: open\n", "initial: nowhere\n", 4, "initial", "state 'nowhere' is not among the states"),
    ("  - trigger: close\n", "  - trigger: Close-It\n", 12, "transitions[0].trigger", "should match pattern"),
    ("version: 1\n", "version: 0\n", 2, "version", "greater than or equal to 1"),
    ("    description: Decided.\n", "", 9, "states.done.description", "Field required"),
    ("    dest: done\n", "    dest: done\n    colour: red\n", 15, "transitions[0].colour", "Extra inputs"),
    ("title: {fi: Näyte, sv: Prov, en: Sample}\n", "title: {fi: Näyte, sv: Prov}\n", 3, "title.en",
     "Field required"),
])
def test_invalid_definition_names_file_line_path_and_problem(tmp_path: Path, old: str, new: str, line: int,
                                                             path: str, problem: str) -> None:
    assert old in VALID
    message = _refusal(tmp_path, VALID.replace(old, new, 1))
    assert f"{tmp_path / 'sample.yaml'}: line {line}: {path}: " in message, message
    assert problem in message, message


def test_timer_trigger_must_be_firable_in_its_state(tmp_path: Path) -> None:
    text = VALID.replace("    description: Waiting for a decision.\n",
                         "    description: Waiting for a decision.\n    timers:\n"
                         "      - {kind: deadline, name: lapse, trigger: expire}\n")
    message = _refusal(tmp_path, text)
    assert ": line 9: states.open.timers[0].trigger: 'expire' cannot fire in state 'open'" in message, message


def test_several_problems_are_all_reported(tmp_path: Path) -> None:
    text = VALID.replace("    dest: done\n", "    dest: gone\n").replace("version: 1\n", "version: -2\n")
    with pytest.raises(DefinitionError) as info:
        load_definition(_write(tmp_path, text))
    problems = info.value.extra["problems"]
    assert isinstance(problems, list) and any("version" in p for p in problems)


def test_bad_yaml_syntax_names_the_line(tmp_path: Path) -> None:
    broken = VALID.replace("    dest: done\n", "    dest: [done\n")
    message = _refusal(tmp_path, broken)
    assert "not valid YAML" in message
    assert ": line 15, column 10 " in message, message  # the line after the unclosed bracket, where parsing stops


def test_bad_yaml_line_number_is_the_offending_line(tmp_path: Path) -> None:
    lines = VALID.splitlines(keepends=True)
    lines[5] = "    description: : : [\n"  # line 6
    message = _refusal(tmp_path, "".join(lines))
    assert " line 6," in message, message


@pytest.mark.parametrize("text", ["", "- just\n- a list\n", "plain words\n"])
def test_a_definition_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    assert "(root): a definition must be a mapping" in _refusal(tmp_path, text)


def test_missing_guard_is_refused_naming_file_and_guard(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID)
    with pytest.raises(DefinitionError) as info:
        Registry().load_dir(tmp_path, guards={})
    assert str(path) in info.value.detail and "no guard registered for ['ready']" in info.value.detail
    registry = Registry()
    registry.load_dir(tmp_path, guards={"ready": lambda ctx: True})
    assert registry.names() == ["sample"]


def test_the_same_version_twice_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    _write(tmp_path, VALID, "b.yaml")
    with pytest.raises(DefinitionError, match="version 1 is loaded twice"):
        Registry().load_dir(tmp_path, guards={"ready": lambda ctx: True})


def test_versions_coexist_and_the_newest_is_default(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "v1.yaml")
    _write(tmp_path, VALID.replace("version: 1", "version: 2"), "v2.yaml")
    registry = Registry()
    registry.load_dir(tmp_path, guards={"ready": lambda ctx: True})
    assert registry.latest_version("sample") == 2
    assert registry.machine("sample", 1).definition.version == 1


def test_parse_definition_names_its_source() -> None:
    with pytest.raises(DefinitionError, match=r"^inline: line 14: transitions\[0\]\.dest: unknown state"):
        parse_definition(VALID.replace("dest: done", "dest: elsewhere"), "inline")
