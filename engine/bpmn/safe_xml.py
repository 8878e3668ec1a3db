"""Parse untrusted BPMN XML safely: no DTDs, no entities, bounded size, element count and depth.

Deployed resources come from any client, so the XML parser must never expand an entity
(billion laughs), fetch anything (external entities, XInclude) or build an unbounded tree.
defusedxml refuses every DOCTYPE (`forbid_dtd`) and entity declaration before expat expands
anything; the limits below stop huge or absurdly deep documents before they cost memory.
"""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import iterparse

#: Largest accepted resource. Zeebe's default maximum message size is 4 MiB, so a larger
#: BPMN resource could not be deployed to a real cluster either.
MAX_RESOURCE_BYTES = 4 * 1024 * 1024
#: Most XML elements in one resource (BPMN DI included). Big real models have a few thousand.
MAX_XML_ELEMENTS = 200_000
#: Deepest element nesting. Real models nest subprocesses a handful of levels (each level adds
#: about three XML levels); anything deeper is hostile or broken.
MAX_XML_DEPTH = 100


class XmlRejection(Exception):
    """The bytes are not acceptable XML; `message` says why (with line/column if known)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def parse_xml(
    content: bytes,
    *,
    max_bytes: int = MAX_RESOURCE_BYTES,
    max_elements: int = MAX_XML_ELEMENTS,
    max_depth: int = MAX_XML_DEPTH,
) -> ET.Element:
    """Parse `content` into an ElementTree root, or raise `XmlRejection`."""
    if len(content) > max_bytes:
        raise XmlRejection(
            f"The resource is {len(content)} bytes, larger than the limit of {max_bytes} bytes"
        )
    if not content.strip():
        raise XmlRejection("The resource is empty")

    depth = 0
    element_count = 0
    root: ET.Element | None = None
    try:
        # iterparse lets us enforce the limits while parsing, before a hostile tree is built.
        events = iterparse(
            io.BytesIO(content),
            events=("start", "end"),
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
        )
        for event, element in events:
            if event == "start":
                depth += 1
                element_count += 1
                if root is None:
                    root = element
                if depth > max_depth:
                    raise XmlRejection(f"The XML nests elements deeper than the limit of {max_depth} levels")
                if element_count > max_elements:
                    raise XmlRejection(f"The XML has more than the limit of {max_elements} elements")
            else:
                depth -= 1
    except DTDForbidden:
        raise XmlRejection(
            "DOCTYPE declarations are not allowed in BPMN resources (the document was not expanded)"
        ) from None
    except EntitiesForbidden as error:
        raise XmlRejection(
            f"Entity declarations are not allowed in BPMN resources (entity '{error.name}')"
        ) from None
    except ExternalReferenceForbidden:
        raise XmlRejection("External references are not allowed in BPMN resources") from None
    except DefusedXmlException as error:  # any other defusedxml refusal
        raise XmlRejection(f"The XML was refused: {type(error).__name__}") from None
    except ET.ParseError as error:
        line, column = error.position
        # expat reports 0-based columns; people count from 1.
        reason = str(error).split(":")[0]
        raise XmlRejection(f"Failed to parse the XML: {reason} (line {line}, column {column + 1})") from None
    except LookupError as error:  # an encoding declaration Python does not know
        raise XmlRejection(f"Failed to parse the XML: {error}") from None
    except (ValueError, UnicodeError) as error:  # e.g. bytes that do not decode
        raise XmlRejection(f"Failed to parse the XML: {type(error).__name__}: {error}") from None
    if root is None:  # pragma: no cover - expat reports "no element found" first
        raise XmlRejection("The resource contains no XML element")
    return root
