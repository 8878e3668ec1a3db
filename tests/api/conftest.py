"""Personas for the API tests (CONVENTIONS: anonymous, viewer, operator, admin) with token clients."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from processes.api.services import api_token_issue
from processes.roles import Role


@dataclass
class Persona:
    name: str
    role: Role | None
    client: APIClient


def token_client(token: str | None) -> APIClient:
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture
def personas(db) -> dict[str, Persona]:  # type: ignore[no-untyped-def]
    found = {"anonymous": Persona("anonymous", None, token_client(None))}
    for role in Role:
        found[role.value] = Persona(
            role.value, role, token_client(api_token_issue(username=role.value, role=role))
        )
    return found


@pytest.fixture
def viewer(personas: dict[str, Persona]) -> APIClient:
    return personas["viewer"].client


@pytest.fixture
def operator(personas: dict[str, Persona]) -> APIClient:
    return personas["operator"].client


@pytest.fixture
def admin(personas: dict[str, Persona]) -> APIClient:
    return personas["admin"].client
