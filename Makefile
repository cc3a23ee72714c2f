# Quick start: `make demo` and `make test` set up what is missing (libtorch 2.11.0 from PyPI into
# ~/.cache/ppl, .cargo/config.toml), then run.
SHELL := bash
CARGO ?= cargo

.PHONY: setup demo test fmt clippy fixtures bench
setup:
	@scripts/setup-libtorch.sh

demo: setup
	$(CARGO) run --example coin_fairness

test: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace

fmt:
	$(CARGO) fmt --all
