"""Tests of engine/bpmn: safe XML, the BPMN parser, Zeebe-style validation and the model."""
