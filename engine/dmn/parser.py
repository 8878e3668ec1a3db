"""Parse a DMN resource (DMN 1.1 to 1.5 XML) into a `DecisionRequirementsGraph`.

Zeebe parses DMN with dmn-scala (camunda-dmn-model underneath); the checks and failure texts
here follow dmn-scala's DmnParser where it has one:

* cycles between decisions: `Invalid DMN model: Cyclic dependencies between decisions detected.`
* unparsable FEEL: `FEEL expression: ...` / `FEEL unary-tests: ...`; an expression element
  without `<text>`: `The expression '<id>' must not be empty.`
* a non-FEEL `expressionLanguage`: `Expression language '<lang>' is not supported`
* COLLECT with an aggregation over several outputs: `hit policy 'COLLECT' with aggregator is
  not defined for compound output`; an unnamed output of a multi-output table:
  ``no output name defined for `<label>` ``
* unreadable XML: `Failed to parse DMN: <reason>` (no DTD, no entity is ever expanded:
  engine.bpmn.safe_xml).

Where camunda-dmn-model would crash with a Java exception instead of a message (a required
decision that does not exist, a rule with fewer cells than columns), the failure says what is
wrong in plain words. Decision logic: decision tables, literal expressions, boxed contexts,
lists, relations and invocations, nested in one another, and business knowledge models
(`Invalid DMN model: Cyclic dependencies between BKMs detected.`, `no BKM found with name '<x>'`);
a boxed function definition is refused by name (the Fleetflow engine does not evaluate it).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator

from engine.bpmn.safe_xml import MAX_RESOURCE_BYTES, XmlRejection, parse_xml
from engine.dmn.errors import DmnParseError
from engine.dmn.model import (
    Aggregation,
    BoxedContext,
    BoxedList,
    Decision,
    DecisionLogic,
    DecisionRequirementsGraph,
    DecisionTable,
    HitPolicy,
    InputEntry,
    Invocation,
    KnowledgeModel,
    LiteralExpression,
    OutputEntry,
    Relation,
    Rule,
    TableInput,
    TableOutput,
)
from engine.feel import (
    CompiledExpression,
    CompiledUnaryTests,
    FeelSyntaxError,
    compile_expression,
    parse_unary_tests,
)

#: DMN model namespaces camunda-dmn-model reads (DmnModelConstants: 1.1, its alternative, 1.2,
#: 1.3, the 1.3 alternative, 1.4, 1.5).
DMN_NAMESPACES = frozenset(
    {
        "http://www.omg.org/spec/DMN/20151101/dmn.xsd",
        "http://www.omg.org/spec/DMN/20151101/dmn11.xsd",
        "http://www.omg.org/spec/DMN/20180521/MODEL/",
        "https://www.omg.org/spec/DMN/20191111/MODEL/",
        "http://www.omg.org/spec/DMN/20191111/MODEL/",
        "https://www.omg.org/spec/DMN/20211108/MODEL/",
        "https://www.omg.org/spec/DMN/20230324/MODEL/",
    }
)

#: `expressionLanguage` values meaning FEEL (dmn-scala DmnParser.feelNameSpaces, lower-cased).
FEEL_LANGUAGES = frozenset(
    {
        "feel",
        "http://www.omg.org/spec/feel/20140401",
        "http://www.omg.org/spec/dmn/20180521/feel/",
        "https://www.omg.org/spec/dmn/20191111/feel/",
        "https://www.omg.org/spec/dmn/20211108/feel/",
        "https://www.omg.org/spec/dmn/20230324/model/",
    }
)

#: Most XML elements in a DMN resource. Every table cell is a FEEL text compiled at deployment,
#: so the bound is lower than for BPMN; a 1,000-rule table of 20 columns stays well below it.
MAX_DMN_XML_ELEMENTS = 100_000

_UNSUPPORTED_LOGIC = {
    "functionDefinition": "a function definition",
}
_EXPRESSION_ELEMENTS = frozenset(
    {"decisionTable", "literalExpression", "context", "list", "relation", "invocation", "functionDefinition"}
)


def parse_dmn(content: bytes) -> DecisionRequirementsGraph:
    """Parse and validate a DMN resource; raise `DmnParseError` listing every problem."""
    try:
        root = parse_xml(content, max_bytes=MAX_RESOURCE_BYTES, max_elements=MAX_DMN_XML_ELEMENTS)
    except XmlRejection as rejection:
        # safe_xml words its refusals for BPMN; the rules are the same for DMN
        raise DmnParseError([f"Failed to parse DMN: {rejection.message.replace('BPMN', 'DMN')}"]) from None
    namespace, local = _split(root.tag)
    if namespace not in DMN_NAMESPACES or local != "definitions":
        raise DmnParseError(
            [
                "Failed to parse DMN: the root element must be 'definitions' in a DMN 1.1-1.5 namespace, "
                f"but found '{local}'"
                + (f" in namespace '{namespace}'" if namespace else " without a namespace")
            ]
        )
    return _Parser(namespace).parse(root)


def _split(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


class _Parser:
    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.failures: list[str] = []
        self.imported_namespaces: set[str] = set()
        #: business knowledge model id -> name
        self.knowledge_ids: dict[str, str] = {}
        #: names of the knowledge models invocations call (checked once all are known)
        self.invoked: list[str] = []

    # helpers ------------------------------------------------------------------------------
    def _q(self, local: str) -> str:
        return f"{{{self.namespace}}}{local}"

    def _children(self, element: ET.Element, local: str) -> list[ET.Element]:
        tag = self._q(local)
        return [child for child in element if child.tag == tag]

    def _child(self, element: ET.Element, local: str) -> ET.Element | None:
        return element.find(self._q(local))

    def _text(self, element: ET.Element) -> str | None:
        """The content of the `<text>` child (None when there is no such child)."""
        text = self._child(element, "text")
        if text is None:
            return None
        return "".join(text.itertext())

    def _language_ok(self, element: ET.Element) -> bool:
        language = element.get("expressionLanguage")
        if language is None or language.strip().lower() in FEEL_LANGUAGES:
            return True
        self.failures.append(f"Expression language '{language.lower()}' is not supported")
        return False

    def _expression(self, element: ET.Element, owner: str) -> tuple[str, CompiledExpression | None]:
        """Compile a literal expression element (`inputExpression`, `outputEntry`, ...)."""
        text = self._text(element)
        if text is None:
            self.failures.append(f"The expression '{element.get('id') or owner}' must not be empty.")
            return "", None
        if not self._language_ok(element):
            return text, None
        try:
            return text, compile_expression(text)
        except FeelSyntaxError as error:
            self.failures.append(f"FEEL expression: failed to parse expression '{text}': {error}")
            return text, None

    def _unary_tests(self, element: ET.Element) -> InputEntry:
        text = self._text(element) or ""
        if not self._language_ok(element):
            return InputEntry(text, None)
        stripped = text.strip()
        if not stripped or stripped == "-":
            # dmn-scala: an empty input entry matches every input value
            return InputEntry(text, None)
        try:
            tests: CompiledUnaryTests | None = parse_unary_tests(text)
        except FeelSyntaxError as error:
            self.failures.append(f"FEEL unary-tests: failed to parse unary-tests '{text}': {error}")
            tests = None
        return InputEntry(text, tests)

    # definitions --------------------------------------------------------------------------
    def parse(self, root: ET.Element) -> DecisionRequirementsGraph:
        definitions_id = root.get("id")
        if not definitions_id:
            self.failures.append("Failed to parse DMN: the 'definitions' element has no id")
        decisions_xml = self._children(root, "decision")
        self.imported_namespaces = {item.get("namespace", "") for item in self._children(root, "import")}
        if not decisions_xml:
            self.failures.append("Failed to parse DMN: the DMN defines no decision")
        seen: set[str] = set()
        for element in decisions_xml:
            decision_id = element.get("id")
            if not decision_id:
                self.failures.append("Failed to parse DMN: a decision has no id")
            elif decision_id in seen:
                self.failures.append(
                    f"Failed to parse DMN: the id '{decision_id}' is used by more than one decision"
                )
            else:
                seen.add(decision_id)
        knowledge_xml = self._children(root, "businessKnowledgeModel")
        for element in knowledge_xml:
            knowledge_id = element.get("id")
            if not knowledge_id:
                self.failures.append("Failed to parse DMN: a business knowledge model has no id")
            elif knowledge_id in seen or knowledge_id in self.knowledge_ids:
                self.failures.append(
                    f"Failed to parse DMN: the id '{knowledge_id}' is used by more than one element"
                )
            else:
                self.knowledge_ids[knowledge_id] = element.get("name") or knowledge_id
        if self.failures:
            raise DmnParseError(self.failures)

        requirements = {
            element.get("id", ""): self._required_decisions(element, seen) for element in decisions_xml
        }
        decision_knowledge = {
            element.get("id", ""): self._required_knowledge(element) for element in decisions_xml
        }
        knowledge_requirements = {
            element.get("id", ""): self._required_knowledge(element) for element in knowledge_xml
        }
        if self.failures:
            raise DmnParseError(self.failures)
        if _has_cycle(requirements):
            raise DmnParseError(["Invalid DMN model: Cyclic dependencies between decisions detected."])
        if _has_cycle(knowledge_requirements):
            raise DmnParseError(["Invalid DMN model: Cyclic dependencies between BKMs detected."])
        knowledge_models = {}
        for element in knowledge_xml:
            knowledge_id = element.get("id", "")
            logic = self._child(element, "encapsulatedLogic")
            body = None
            parameters: tuple[str, ...] = ()
            if logic is not None:
                parameters = tuple(
                    item.get("name") or "" for item in self._children(logic, "formalParameter")
                )
                expression = self._expression_child(logic)
                body = self._logic(expression, knowledge_id) if expression is not None else None
            knowledge_models[knowledge_id] = KnowledgeModel(
                id=knowledge_id,
                name=self.knowledge_ids[knowledge_id],
                parameters=parameters,
                body=body,
                required_knowledge=knowledge_requirements[knowledge_id],
            )

        decisions: dict[str, Decision] = {}
        for element in decisions_xml:
            decision_id = element.get("id", "")
            decision = self._decision(element, requirements[decision_id], decision_knowledge[decision_id])
            if decision is not None:
                decisions[decision.id] = decision
        known_names = set(self.knowledge_ids.values())
        for name in self.invoked:
            if name not in known_names:
                self.failures.append(f"no BKM found with name '{name}'")
        if self.failures:
            raise DmnParseError(self.failures)
        assert definitions_id is not None
        return DecisionRequirementsGraph(
            id=definitions_id,
            name=root.get("name") or definitions_id,
            namespace=root.get("namespace") or "",
            decisions=decisions,
            knowledge_models=knowledge_models,
        )

    def _required_decisions(self, decision: ET.Element, known_ids: set[str]) -> tuple[str, ...]:
        decision_id = decision.get("id", "")
        required: list[str] = []
        for requirement in self._children(decision, "informationRequirement"):
            # `requiredInput` (an inputData element) only documents where a variable comes
            # from; dmn-scala ignores it and so do we.
            reference = self._child(requirement, "requiredDecision")
            if reference is None:
                continue
            href = reference.get("href", "")
            namespace, hash_sign, target = href.partition("#")
            if not hash_sign:
                namespace, target = "", href
            if namespace:
                if namespace not in self.imported_namespaces:
                    self.failures.append(f"No import found for namespace '{namespace}'.")
                else:
                    self.failures.append(
                        f"decision '{decision_id}' requires the imported decision '{href}': imported "
                        "decisions are not supported by the Fleetflow embedded engine"
                    )
                continue
            if target not in known_ids:
                self.failures.append(
                    f"Invalid DMN model: the decision '{decision_id}' requires the decision '{target}', "
                    "which does not exist in this DMN"
                )
                continue
            required.append(target)
        return tuple(required)

    def _required_knowledge(self, element: ET.Element) -> tuple[str, ...]:
        """The business knowledge models a decision or a BKM requires (knowledgeRequirement)."""
        owner = element.get("id", "")
        required: list[str] = []
        for requirement in self._children(element, "knowledgeRequirement"):
            reference = self._child(requirement, "requiredKnowledge")
            if reference is None:
                continue
            href = reference.get("href", "")
            namespace, hash_sign, target = href.partition("#")
            if not hash_sign:
                namespace, target = "", href
            if namespace:
                self.failures.append(
                    f"'{owner}' requires the imported business knowledge model '{href}': imports are not "
                    "supported by the Fleetflow embedded engine"
                )
            elif target not in self.knowledge_ids:
                self.failures.append(
                    f"Invalid DMN model: '{owner}' requires the business knowledge model '{target}', which does "
                    "not exist in this DMN"
                )
            else:
                required.append(target)
        return tuple(required)

    # decisions ----------------------------------------------------------------------------
    def _decision(
        self, element: ET.Element, required: tuple[str, ...], knowledge: tuple[str, ...]
    ) -> Decision | None:
        decision_id = element.get("id", "")
        expression = self._expression_child(element)
        logic: DecisionLogic | None = None
        if expression is None:
            self.failures.append(
                f"unsupported decision expression 'null' (decision '{decision_id}' has no logic)"
            )
        else:
            logic = self._logic(expression, decision_id)
        if logic is None:
            return None
        variable = self._child(element, "variable")
        result_name = (variable.get("name") if variable is not None else None) or decision_id
        result_type = variable.get("typeRef") if variable is not None else None
        return Decision(
            id=decision_id,
            name=element.get("name") or decision_id,
            logic=logic,
            result_name=result_name,
            result_type=result_type or None,
            required_decisions=required,
            required_knowledge=knowledge,
        )

    def _expression_child(self, element: ET.Element) -> ET.Element | None:
        """The (first) expression element inside a decision, context entry or relation row."""
        for child in element:
            namespace, local = _split(child.tag)
            if namespace == self.namespace and local in _EXPRESSION_ELEMENTS:
                return child
        return None

    def _logic(self, element: ET.Element, owner: str) -> DecisionLogic | None:
        """Any boxed expression: a decision table, a literal expression, a context, a list or
        a relation (nested as deep as the XML allows, which safe_xml bounds)."""
        _namespace, local = _split(element.tag)
        failures_before = len(self.failures)
        if local == "decisionTable":
            return self._decision_table(element, owner)
        if local == "literalExpression":
            text, expression = self._expression(element, owner)
            return LiteralExpression(element.get("id"), text, expression) if expression is not None else None
        if local == "context":
            entries: list[tuple[str, DecisionLogic]] = []
            result: DecisionLogic | None = None
            context_entries = self._children(element, "contextEntry")
            for index, entry in enumerate(context_entries):
                variable = self._child(entry, "variable")
                name = variable.get("name") if variable is not None else None
                inner = self._expression_child(entry)
                logic = self._logic(inner, owner) if inner is not None else None
                if inner is None:
                    self.failures.append(f"decision '{owner}': a context entry has no expression")
                if name is None and index != len(context_entries) - 1:
                    self.failures.append(
                        f"decision '{owner}': only the last context entry may have no variable"
                    )
                if logic is None:
                    continue
                if name is None:
                    result = logic
                else:
                    entries.append((name, logic))
            if len(self.failures) > failures_before:
                return None
            return BoxedContext(element.get("id"), tuple(entries), result)
        if local == "list":
            items = []
            for child in element:
                namespace, child_local = _split(child.tag)
                if namespace == self.namespace and child_local in _EXPRESSION_ELEMENTS:
                    items.append(self._logic(child, owner))
            if len(self.failures) > failures_before:
                return None
            return BoxedList(element.get("id"), tuple(item for item in items if item is not None))
        if local == "relation":
            columns = tuple(column.get("name") or "" for column in self._children(element, "column"))
            rows = []
            for row in self._children(element, "row"):
                cells = [
                    self._logic(child, owner)
                    for child in row
                    if _split(child.tag)[0] == self.namespace and _split(child.tag)[1] in _EXPRESSION_ELEMENTS
                ]
                if len(cells) != len(columns):
                    # dmn-scala's message
                    self.failures.append(
                        f"expected row with '{len(columns)}' elements but found '{len(cells)}'"
                    )
                rows.append(tuple(cell for cell in cells if cell is not None))
            if len(self.failures) > failures_before:
                return None
            return Relation(element.get("id"), columns, tuple(rows))
        if local == "invocation":
            target = self._child(element, "literalExpression")
            name = (self._text(target) or "").strip() if target is not None else ""
            bindings = []
            for binding in self._children(element, "binding"):
                parameter = self._child(binding, "parameter")
                inner = self._expression_child(binding)
                logic = self._logic(inner, owner) if inner is not None else None
                if parameter is not None and logic is not None:
                    bindings.append((parameter.get("name") or "", logic))
            if not name:
                self.failures.append(f"decision '{owner}': the invocation names no business knowledge model")
            self.invoked.append(name)
            if len(self.failures) > failures_before:
                return None
            return Invocation(element.get("id"), name, tuple(bindings))
        kind = _UNSUPPORTED_LOGIC.get(local, f"'{local}'")
        self.failures.append(
            f"decision '{owner}' uses {kind}, which is not supported by the Fleetflow embedded engine "
            "(decision tables, literal expressions, contexts, lists, relations and invocations are)"
        )
        return None

    def _decision_table(self, table: ET.Element, decision_id: str) -> DecisionTable | None:
        failures_before = len(self.failures)
        hit_policy_text = table.get("hitPolicy", "UNIQUE")
        try:
            hit_policy = HitPolicy(hit_policy_text)
        except ValueError:
            self.failures.append(f"decision '{decision_id}': unsupported hit policy '{hit_policy_text}'")
            hit_policy = HitPolicy.UNIQUE
        aggregation: Aggregation | None = None
        aggregation_text = table.get("aggregation")
        if aggregation_text is not None:
            try:
                aggregation = Aggregation(aggregation_text)
            except ValueError:
                self.failures.append(
                    f"decision '{decision_id}': unsupported aggregation '{aggregation_text}'"
                )
            if hit_policy is not HitPolicy.COLLECT:
                # camunda-dmn-model reads the attribute only for COLLECT; it is meaningless elsewhere
                aggregation = None

        inputs = tuple(self._inputs(table, decision_id))
        outputs_xml = self._children(table, "output")
        if not outputs_xml:
            self.failures.append(f"decision '{decision_id}': the decision table has no output")
        if len(outputs_xml) > 1 and hit_policy is HitPolicy.COLLECT and aggregation is not None:
            self.failures.append("hit policy 'COLLECT' with aggregator is not defined for compound output")
        outputs = tuple(
            self._output(output, index, len(outputs_xml)) for index, output in enumerate(outputs_xml)
        )
        # count the columns as written: an input whose expression failed is reported on its own
        rules = tuple(self._rules(table, decision_id, len(self._children(table, "input")), len(outputs)))
        if len(self.failures) > failures_before:
            return None
        return DecisionTable(table.get("id"), hit_policy, aggregation, inputs, outputs, rules)

    def _inputs(self, table: ET.Element, decision_id: str) -> Iterator[TableInput]:
        for index, element in enumerate(self._children(table, "input"), start=1):
            input_id = element.get("id") or f"{decision_id}_input_{index}"
            expression_element = self._child(element, "inputExpression")
            if expression_element is None:
                self.failures.append(f"The expression '{input_id}' must not be empty.")
                continue
            text, expression = self._expression(expression_element, input_id)
            if expression is not None:
                yield TableInput(input_id, element.get("label"), text, expression)

    def _output(self, element: ET.Element, index: int, count: int) -> TableOutput:
        output_id = element.get("id") or f"output_{index + 1}"
        name = element.get("name")
        label = element.get("label")
        if name is None and count > 1:
            self.failures.append(f"no output name defined for `{label}`")
        priority_values: tuple[str, ...] = ()
        values = self._child(element, "outputValues")
        if values is not None:
            text = self._text(values) or ""
            # dmn-scala sortByPriority: split at commas, trim, drop quotes
            priority_values = tuple(
                part.strip().replace('"', "").replace("'", "") for part in text.split(",")
            )
        default_value = None
        default = self._child(element, "defaultOutputEntry")
        if default is not None:
            _text, default_value = self._expression(default, output_id)
        return TableOutput(
            id=output_id,
            name=name or "",
            label=label,
            type_ref=element.get("typeRef"),
            priority_values=priority_values,
            default_value=default_value,
        )

    def _rules(
        self, table: ET.Element, decision_id: str, input_count: int, output_count: int
    ) -> Iterator[Rule]:
        for index, element in enumerate(self._children(table, "rule"), start=1):
            rule_id = element.get("id") or ""
            input_cells = self._children(element, "inputEntry")
            output_cells = self._children(element, "outputEntry")
            if len(input_cells) != input_count or len(output_cells) != output_count:
                self.failures.append(
                    f"decision '{decision_id}': rule {index}{f' ({rule_id})' if rule_id else ''} has "
                    f"{len(input_cells)} input and {len(output_cells)} output entries, but the table has "
                    f"{input_count} inputs and {output_count} outputs"
                )
                continue
            input_entries = tuple(self._unary_tests(cell) for cell in input_cells)
            output_entries = tuple(self._output_entry(cell) for cell in output_cells)
            yield Rule(rule_id, index, input_entries, output_entries)

    def _output_entry(self, element: ET.Element) -> OutputEntry:
        text = self._text(element) or ""
        if not text.strip():
            # the Modeler leaves a cell empty for "no value": null
            return OutputEntry(text, None)
        _text, expression = self._expression(element, element.get("id") or "outputEntry")
        return OutputEntry(text, expression)


def _has_cycle(requirements: dict[str, tuple[str, ...]]) -> bool:
    """Whether the required-decision graph has a cycle (iterative: a hostile chain of thousands
    of decisions must not exhaust the stack)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in requirements:
        if state.get(start):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(start, iter(requirements.get(start, ())))]
        state[start] = 1
        while stack:
            node, pending = stack[-1]
            following = next(pending, None)
            if following is None:
                state[node] = 2
                stack.pop()
                continue
            mark = state.get(following)
            if mark == 1:
                return True
            if mark is None:
                state[following] = 1
                stack.append((following, iter(requirements.get(following, ()))))
    return False
