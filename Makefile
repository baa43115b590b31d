.PHONY: run test lock check bench

run:  ## run the service (API, worker, beat) with the demo data
	./scripts/run.sh

test:  ## run the test suite against the real PostgreSQL and Redis
	./scripts/test.sh

lock:  ## re-resolve requirements.lock from pyproject.toml (hashes for every file)
	.venv/bin/python -m pip install --quiet uv
	.venv/bin/uv pip compile pyproject.toml --extra test --extra bench --generate-hashes --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 -o requirements.lock

check:  ## Django's system checks, including the production deployment checks
	REMS_ENV=development .venv/bin/python manage.py check
	REMS_ENV=production SECRET_KEY=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(50))') ALLOWED_HOSTS=rems.example.org \
		.venv/bin/python manage.py check --deploy --fail-level WARNING

bench:  ## benchmarks: decisions over HTTP beside /healthz (wrk), a surge at a constant rate with a rule-set switch, a profile, history and table size, sweeps, compliance log (bench-results/)
	bash -c 'source scripts/install.sh'
	.venv/bin/python scripts/bench/run_all.py
