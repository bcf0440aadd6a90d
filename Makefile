# cdtools: the two commands a fresh machine needs are `make demo` and `make test`.
# Each creates .venv when it is missing and installs the package with its dev tools.

VENV ?= .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))

.PHONY: install browser demo test lint lab notebooks bench clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

install: $(INSTALLED)

demo: $(INSTALLED)
	$(VENV)/bin/cdtools demo --out outputs

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The browser test drives Debian's Chromium through Playwright (no browser download).
# Install it when it is missing and this user can; otherwise the test says what to do.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
			sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else \
			echo "chromium is missing and cannot be installed here: the browser test will skip (apt-get install chromium)"; \
		fi; \
	}

# Two pytest workers, one thread each (torch in the tests and in every notebook kernel):
# on this project's 2-core machine that is 9 minutes against 13.3 for one worker with two
# threads (a fresh clone, an empty data cache). A test file or notebook stays on one worker (nbval runs a notebook's cells
# in order); notebook 06 goes first, because training the sample land-cover classifier
# is the longest single step.
LONGEST := notebooks/06_classify_changes.ipynb
test: lint browser
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -p no:cacheprovider --durations=15 -n 2 --dist loadfile \
		$(LONGEST) tests $(filter-out $(LONGEST),$(NOTEBOOKS)) \
		--nbval --nbval-current-env --nbval-cell-timeout=600

lab: $(INSTALLED)
	$(VENV)/bin/jupyter lab notebooks

# Re-run every notebook in place: this is how their committed outputs are made.
notebooks: $(INSTALLED)
	for nb in $(NOTEBOOKS); do \
		$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=600 --ExecutePreprocessor.store_widget_state=False \
			"$$nb" || exit 1; \
	done

bench: $(INSTALLED)
	$(PY) benchmarks/naive_baseline.py
	$(PY) benchmarks/export_speed.py
	$(PY) benchmarks/accuracy_sample.py
	$(PY) benchmarks/accuracy_airchange.py
	$(PY) benchmarks/accuracy_real.py
	$(PY) benchmarks/scene_speed.py
	$(PY) benchmarks/runtimes.py
	$(PY) benchmarks/transitions_sample.py

clean:
	rm -rf outputs notebooks/outputs .pytest_cache
