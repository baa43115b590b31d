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

bench:  ## benchmarks: decisions over HTTP, history and table size, sweeps, compliance log, mixed load (bench-results/)
	.venv/bin/python scripts/bench/decision_bench.py --patients 20000 --seconds 10
	.venv/bin/python scripts/bench/history_bench.py --small 10000 --large 1000000 --samples 50
	.venv/bin/python scripts/bench/sweep_bench.py --sizes 10000,100000,1000000 --plan-max 100000
	.venv/bin/python scripts/bench/log_bench.py --entries 1000000
	.venv/bin/python scripts/bench/load_test.py --users 30 --minutes 3
