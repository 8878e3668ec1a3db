# Fleetflow's image: one image for every Python service of docker-compose.yml (web, Celery worker,
# importer, gateway proxy, demo workers); the service's `command` picks the program.
#
# Dependencies come from requirements.lock (what CI tested): the runtime list of pyproject.toml,
# each pinned by the lock (`-c`), so the dev tools of the lock stay out of the image. The code runs
# from /app (Django's BASE_DIR holds templates/ and static/), not from site-packages.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > runtime.txt \
    && python -m venv /opt/venv \
    && /opt/venv/bin/pip install -r runtime.txt -c requirements.lock

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=console.settings
RUN groupadd --system --gid 10001 fleetflow \
    && useradd --system --uid 10001 --gid fleetflow --home-dir /app --shell /usr/sbin/nologin fleetflow
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY manage.py pyproject.toml ./
COPY console console
COPY processes processes
COPY servers servers
COPY engine engine
COPY routing routing
COPY gatewaykit gatewaykit
COPY demo demo
COPY templates templates
COPY static static
# Static files collected at build time into STATIC_ROOT (/app/var/static), which WhiteNoise serves; the
# throwaway SECRET_KEY only lets settings load for this step, the real one comes from the environment.
RUN DEBUG=0 SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
    && mkdir -p /app/var/routing \
    && chown -R fleetflow:fleetflow /app/var
USER fleetflow
EXPOSE 8000 26500
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "console.asgi:application"]
