"""`python manage.py issue_token --user NAME --role viewer|operator|admin` (DESIGN §8).

Creates the user and the role if needed and prints the API token alone on its last line, for
``Authorization: Token <token>``. Issuing again replaces the user's previous token.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from processes.api.services import api_token_issue
from processes.roles import Role


class Command(BaseCommand):
    help = "Create or update an API user with a role and print a new API token on the last line."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", required=True, help="user name (created if missing)")
        parser.add_argument("--role", required=True, choices=Role.values, help="the user's only role")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = api_token_issue(username=options["user"], role=Role(options["role"]))
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stderr.write(f"user {options['user'].strip()} has role {options['role']}; its API token:")
        self.stdout.write(token)
