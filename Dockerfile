FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock .
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock

COPY . .
RUN REMS_ENV=production SECRET_KEY=collectstatic-only-$(python -c 'import secrets; print(secrets.token_hex(32))') \
    ALLOWED_HOSTS=build python manage.py collectstatic --noinput \
 && useradd --system --uid 10001 rems && mkdir -p /app/.local && chown rems /app/.local
USER rems

EXPOSE 8000
# Long enough for a streamed export or a verification of a large log.
CMD ["gunicorn", "rems.config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4", "--threads", "4", \
     "--timeout", "300", "--access-logfile", "-"]
