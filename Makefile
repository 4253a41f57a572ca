# The one task runner: people, CI (.ci/run) and pre-commit all go through these targets.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
PYTHON  := $(BIN)/python
STAMP   := $(VENV)/.installed
MODEL_DIR ?= $(shell $(PYTHON) -c 'from codegen_lsp.modelpkg.locate import default_model_dir; print(default_model_dir())' 2>/dev/null)

.PHONY: install model run test test-remote lint bench vsix

$(PYTHON):
	$(PY) -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip

# torch is pinned first so that nothing resolves an unpinned (CUDA) torch later.
$(STAMP): pyproject.toml | $(PYTHON)
	$(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e '.[export,dev]'
	# onnxruntime-genai's wheel requires the CPU `onnxruntime`, which would clobber onnxruntime-gpu's
	# module; its model builder and runtime work against either, so install it without dependencies.
	$(PYTHON) -m pip install -q --no-deps onnxruntime-genai==0.18.0
	touch $(STAMP)

install: $(STAMP)

model: install
	$(PYTHON) -m export default-model

run: model
	$(BIN)/codegen-lsp generate examples/ --candidates 2

lint: install
	$(BIN)/ruff check codegen_lsp export models tests benchmarks
	$(BIN)/mypy codegen_lsp

# The VS Code extension: eslint, tsc, unit tests, then the .vsix (vscode-client/dist/codegen-lsp.vsix).
vsix:
	$(MAKE) -C vscode-client check package

# Every test, the real-editor ones included (they install code-server/chromium on first run).
test: install lint vsix
	$(PYTHON) -m export default-model
	$(BIN)/pytest -q -p no:cacheprovider

bench: model
	$(BIN)/codegen-lsp bench

# Opt-in, not part of `test`: the remote backend against a real engine (llama.cpp's server serving the
# default model's GGUF on 127.0.0.1; tests/remote/test_engine.py). The first run builds
# llama-cpp-python from source (~6 min on 2 cores; the flags avoid the AMX kernels that crash on some
# CPUs: set LLAMA_CMAKE_ARGS for a CPU without AVX-512) and fetches the GGUF if absent (~470 MiB).
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AMX_TILE=OFF \
	-DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_OPENMP=OFF
test-remote: install
	$(PYTHON) -c 'import llama_cpp.server.app' 2>/dev/null || \
		CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PYTHON) -m pip install -q -e '.[remote]'
	CODEGEN_LSP_TEST_REMOTE=1 $(BIN)/pytest -q -p no:cacheprovider -m remote tests/remote
