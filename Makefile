# quickturn — two commands for a newcomer: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
ENV_STAMP := $(VENV)/.bootstrapped

.PHONY: env demo test test-fast lint format gpu-check bench profile data train eval listener-eval listener-report clean-env

$(ENV_STAMP): pyproject.toml .ci/bootstrap.sh
	VENV=$(VENV) .ci/bootstrap.sh

env: $(ENV_STAMP)

## Run the scripted multi-turn demo on the embedded default models (offline, no mic needed).
demo: $(ENV_STAMP)
	$(PY) -m agent.cli demo --out out/demo --json out/demo/report.json

## The test suite (real models, real sockets; CUDA tests skip without a GPU).
test: $(ENV_STAMP)
	$(PY) -m pytest -q tests

test-fast: $(ENV_STAMP)
	$(PY) -m pytest -q -m "not slow" tests

lint: $(ENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(ENV_STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## CUDA tests plus the LM benchmark (run on a machine with a GPU).
gpu-check: $(ENV_STAMP)
	$(PY) -m pytest -q -m cuda tests
	$(PY) -m benchmarks.lm_bench --device cuda --quick --json out/bench/lm_cuda.json

## LM benchmark on this machine's CPU.
bench: $(ENV_STAMP)
	$(PY) -m benchmarks.lm_bench --device cpu --json out/bench/lm_cpu.json

## Latency profile of the demo set.
profile: $(ENV_STAMP)
	$(PY) -m agent.cli profile --input demo --json out/profile/report.json --plot out/profile/plot.png --trace out/profile/trace.json

## Embedded model: build the data set, train (resumable), evaluate.
DATA := recipe/data
MODEL := agent/embedded/model

data: $(ENV_STAMP)
	$(PY) -m recipe.build_data --config configs/embedded_data.toml

$(DATA)/train.jsonl:
	$(MAKE) data

## Resumable: each run stops after max_minutes (run `make train` again to continue). Stage 1 trains the
## denoiser, stage 2 adds the copy head, stage 3 adds the copy and long-history sets, stage 4 the name
## set, stage 5 the context's part of day and worked-out sums, stage 6 sums asked in words, stage 7 (two
## seeds, their soup) the meaning of the user's words and the memory set; then the draft index.
STAGE1 := configs/train_embedded.toml
STAGE2 := configs/train_embedded_copy.toml
STAGE3 := configs/train_embedded_stage3.toml
STAGE4 := configs/train_embedded_stage4.toml
STAGE5 := configs/train_embedded_facts.toml
STAGE6 := configs/train_embedded_sums.toml
STAGE7 := configs/train_embedded_user_memory.toml
STAGE7_RUN := runs/embedded_user_memory
train: $(ENV_STAMP) $(DATA)/train.jsonl
	test -f runs/embedded/init_embeddings.npy || $(PY) -m recipe.init_embeddings --hidden 256 --out runs/embedded/init_embeddings.npy
	$(PY) -m dlm_core.train --config $(STAGE1) --finished || $(PY) -m dlm_core.train --config $(STAGE1)
	$(PY) -m dlm_core.train --config $(STAGE1) --finished
	$(PY) -m dlm_core.train --config $(STAGE2) --finished || $(PY) -m dlm_core.train --config $(STAGE2)
	$(PY) -m dlm_core.train --config $(STAGE2) --finished
	$(PY) -m dlm_core.train --config $(STAGE3) --finished || $(PY) -m dlm_core.train --config $(STAGE3)
	$(PY) -m dlm_core.train --config $(STAGE3) --finished
	$(PY) -m dlm_core.train --config $(STAGE4) --finished || $(PY) -m dlm_core.train --config $(STAGE4)
	$(PY) -m dlm_core.train --config $(STAGE4) --finished
	$(PY) -m dlm_core.train --config $(STAGE5) --finished || $(PY) -m dlm_core.train --config $(STAGE5)
	$(PY) -m dlm_core.train --config $(STAGE5) --finished
	$(PY) -m dlm_core.train --config $(STAGE6) --finished || $(PY) -m dlm_core.train --config $(STAGE6)
	$(PY) -m dlm_core.train --config $(STAGE6) --finished
	$(PY) -m dlm_core.train --config $(STAGE6) --export runs/embedded_sums/export  # averaged with stage 5 (the config says so)
	test -f runs/embedded/semantic_features.npy || $(PY) -m recipe.init_embeddings --features --out runs/embedded/semantic_features.npy
	for seed in 0 1; do \
	  $(PY) -m dlm_core.train --config $(STAGE7) --seed $$seed --finished || $(PY) -m dlm_core.train --config $(STAGE7) --seed $$seed; \
	  $(PY) -m dlm_core.train --config $(STAGE7) --seed $$seed --finished || exit 1; \
	  $(PY) -m dlm_core.train --config $(STAGE7) --seed $$seed --export $(STAGE7_RUN)-seed$$seed/export || exit 1; \
	done  # each export averaged with stage 6 (the config says so)
	$(PY) -m dlm_core.train.soup $(STAGE7_RUN)-seed0/export $(STAGE7_RUN)-seed1/export --out $(MODEL)
	$(PY) -m recipe.drafts --train $(DATA)/train.jsonl $(DATA)/train_parts.jsonl $(DATA)/train_sums.jsonl --out $(MODEL)/drafts.json.gz

eval: $(ENV_STAMP)
	$(PY) -m recipe.evaluate --json out/eval/eval.json

## Listener evaluation: replies of the shipped model and the teacher to 329 hand-written prompts, as a
## blind labelling sheet (out/listener_eval/sheet.jsonl, .md; the key apart). Label it by
## recipe/listener_eval/RUBRIC.md into out/listener_eval/labels.jsonl, then `make listener-report`.
listener-eval: $(ENV_STAMP)
	$(PY) -m recipe.listener_eval.run --out out/listener_eval

listener-report: $(ENV_STAMP)
	$(PY) -m recipe.listener_eval.report --labels out/listener_eval/labels.jsonl --md out/listener_eval/report.md

clean-env:
	rm -rf $(VENV)
