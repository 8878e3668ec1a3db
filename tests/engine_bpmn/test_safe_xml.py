"""Hostile and broken XML is refused with a clear message and never expanded or crashes."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.bpmn import MAX_RESOURCE_BYTES, BpmnValidationError, parse_bpmn
from engine.bpmn.safe_xml import XmlRejection, parse_xml
from tests.engine_bpmn.snippets import document, flow, rejection

MINIMAL = document('<bpmn:startEvent id="start" /><bpmn:endEvent id="end" />' + flow("f", "start", "end"))


def resource_problem(content: bytes) -> str:
    error = rejection(content)
    assert len(error.problems) == 1
    (problem,) = error.problems
    assert problem.element_id is None
    return problem.message


def test_doctype_is_refused_not_expanded() -> None:
    content = MINIMAL.replace(b"<bpmn:definitions", b'<!DOCTYPE x [<!ENTITY a "b">]>\n<bpmn:definitions', 1)
    assert resource_problem(content) == (
        "DOCTYPE declarations are not allowed in BPMN resources (the document was not expanded)"
    )


def test_billion_laughs_is_refused() -> None:
    entities = "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10))
    content = (
        f'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">{entities}]><lolz>&lol9;</lolz>'
    ).encode()
    assert "DOCTYPE declarations are not allowed" in resource_problem(content)


def test_external_entity_is_refused() -> None:
    content = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY secret SYSTEM "file:///etc/passwd">]><d>&secret;</d>'
    )
    assert "DOCTYPE declarations are not allowed" in resource_problem(content)


def test_external_dtd_reference_is_refused() -> None:
    content = b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://127.0.0.1:1/evil.dtd"><d/>'
    assert "DOCTYPE declarations are not allowed" in resource_problem(content)


def test_undeclared_entity_reference_is_malformed() -> None:
    assert resource_problem(b"<d>&undeclared;</d>") == (
        "Failed to parse the XML: undefined entity (line 1, column 4)"
    )


def test_oversized_resource_is_refused_before_parsing() -> None:
    padding = b"<!-- " + b"x" * MAX_RESOURCE_BYTES + b" -->"
    content = MINIMAL.replace(b"</bpmn:definitions>", padding + b"</bpmn:definitions>")
    message = resource_problem(content)
    assert message == (
        f"The resource is {len(content)} bytes, larger than the limit of {MAX_RESOURCE_BYTES} bytes"
    )


def test_truncated_document_reports_line_and_column() -> None:
    truncated = MINIMAL[: MINIMAL.index(b"</bpmn:process>")]
    message = resource_problem(truncated)
    assert message.startswith("Failed to parse the XML: no element found (line ")


def test_mismatched_tag_reports_position() -> None:
    assert resource_problem(b"<a>\n  <b></a>") == "Failed to parse the XML: mismatched tag (line 2, column 8)"


def test_empty_and_blank_resources_are_refused() -> None:
    assert resource_problem(b"") == "The resource is empty"
    assert resource_problem(b"  \n ") == "The resource is empty"


def test_not_xml_at_all() -> None:
    assert resource_problem(b"not a workflow").startswith(
        "Failed to parse the XML: syntax error (line 1, column 1)"
    )


def test_deep_nesting_is_refused() -> None:
    content = b"<a>" * 150 + b"</a>" * 150
    assert resource_problem(content) == "The XML nests elements deeper than the limit of 100 levels"


def test_element_count_limit() -> None:
    content = b"<a>" + b"<b/>" * 20 + b"</a>"
    try:
        parse_xml(content, max_elements=10)
    except XmlRejection as rejection_:
        assert rejection_.message == "The XML has more than the limit of 10 elements"
    else:
        raise AssertionError("the element limit was not enforced")
    assert parse_xml(content, max_elements=21).tag == "a"


def test_other_encodings_are_read() -> None:
    content = (
        MINIMAL.decode()
        .replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
        .replace('<bpmn:startEvent id="start" />', '<bpmn:startEvent id="start" name="Départ" />')
        .encode("iso-8859-1")
    )
    (model,) = parse_bpmn("latin1.bpmn", content)
    assert model.element("start").name == "Départ"


def test_text_input_is_accepted() -> None:
    (model,) = parse_bpmn("text.bpmn", MINIMAL.decode())
    assert model.bpmn_process_id == "p"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(content: bytes) -> None:
    try:
        parse_bpmn("fuzz.bpmn", content)
    except BpmnValidationError as error:
        assert error.problems
        assert error.zeebe_message().startswith("Expected to deploy new resources")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_valid_documents_never_crash(data: st.DataObject) -> None:
    """Cut, duplicate or replace a slice of a valid document: valid model or a clear rejection."""
    content = bytearray(MINIMAL)
    start = data.draw(st.integers(0, len(content) - 1))
    end = data.draw(st.integers(start, min(len(content), start + 40)))
    replacement = data.draw(
        st.sampled_from([b"", b"<", b">", b'"', b"=", b"x", b"</bpmn:process>", content[start:end] * 2])
    )
    mutated = bytes(content[:start] + replacement + content[end:])
    try:
        models = parse_bpmn("mutated.bpmn", mutated)
    except BpmnValidationError as error:
        assert error.problems
        return
    for model in models:
        assert model.none_start_event is not None


def test_unknown_encoding_declaration() -> None:
    """Found by the mutation fuzzer: expat raised LookupError for an unknown encoding."""
    content = MINIMAL.replace(b'encoding="UTF-8"', b'encoding="xUTF-8"')
    assert resource_problem(content) == "Failed to parse the XML: unknown encoding: xUTF-8"


def test_resource_size_limit_is_configurable() -> None:
    try:
        parse_bpmn("small.bpmn", MINIMAL, max_resource_bytes=100)
    except BpmnValidationError as error:
        assert error.problems[0].message == (
            f"The resource is {len(MINIMAL)} bytes, larger than the limit of 100 bytes"
        )
    else:
        raise AssertionError("the configured limit was not applied")
