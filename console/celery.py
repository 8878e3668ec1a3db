"""The Celery application; operator actions run as its tasks (DESIGN §6)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("fleetflow")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
