#!/usr/bin/env bash
# Run the test suite: set up, then pytest (including an end-to-end smoke run to the PDF).
# Usage: bash scripts/test.sh [pytest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
