FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY . .
RUN REMS_ENV=production SECRET_KEY=collectstatic-only-$(python -c 'import secrets; print(secrets.token_hex(32))') \
    ALLOWED_HOSTS=build python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 rems \
 && mkdir -p /app/.local /var/lib/rems/checkpoints /var/lib/rems/keys \
 && chown rems /app/.local /var/lib/rems/checkpoints /var/lib/rems/keys && chmod 700 /var/lib/rems/keys
USER rems

EXPOSE 8000
# With threads, gunicorn's --timeout restarts a worker process that stops answering its arbiter, not a long
# request: a streamed export or a verification of a large log runs past it. What bounds a request is the service's
# own limits on every database and broker wait (docs/operations.md, "Degraded mode").
CMD ["gunicorn", "rems.config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", \
     "--timeout", "30", "--graceful-timeout", "30", "--access-logfile", "-"]
