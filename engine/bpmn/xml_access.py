"""Reading BPMN XML elements: namespaces, children of the BPMN namespace, zeebe:* extension
elements and xs:boolean attributes (shared by the parser and the event reader)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
ZEEBE_NS = "http://camunda.org/schema/zeebe/1.0"


def split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


def bpmn_children(xml: ET.Element, local: str | None = None) -> list[ET.Element]:
    result = []
    for child in xml:
        namespace, name = split(child.tag) if isinstance(child.tag, str) else ("", "")
        if namespace == BPMN_NS and (local is None or name == local):
            result.append(child)
    return result


def zeebe_extensions(xml: ET.Element) -> list[tuple[str, ET.Element]]:
    """(local name, element) of every zeebe:* child of the element's bpmn:extensionElements."""
    found = []
    for extension_elements in bpmn_children(xml, "extensionElements"):
        for child in extension_elements:
            if not isinstance(child.tag, str):
                continue
            namespace, name = split(child.tag)
            if namespace == ZEEBE_NS:
                found.append((name, child))
    return found


def is_true(value: str | None) -> bool:
    return value is not None and value.strip() in ("true", "1")


def is_false(value: str | None) -> bool:
    """An explicit xs:boolean false (the attribute's default, when absent, is true)."""
    return value is not None and value.strip() in ("false", "0")
