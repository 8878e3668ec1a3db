from django.apps import AppConfig


class ProcessesConfig(AppConfig):
    name = "processes"
    verbose_name = "Processes"

    def ready(self) -> None:
        from processes import auth_audit

        auth_audit.connect()  # logins, failed logins, token use and revocation -> audit log
