#!/usr/bin/env bash
# The wheel works outside the checkout: build it from the committed tree, install it into a fresh
# virtualenv in /tmp (torch the way bootstrap.sh installs it, everything else from the wheel's own
# dependencies; pip's cache keeps this offline once bootstrap has run), then from a folder outside
# the repository run a whole spoken turn (ASR -> LM -> TTS) on the shipped models and check the help.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
PY=${VENV:-.venv}/bin/python
WORK=$(mktemp -d /tmp/quickturn-wheel.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "wheel_test: building the wheel from HEAD"
mkdir "$WORK/src"
git archive --format=tar HEAD | tar -x -C "$WORK/src"
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/quickturn-*.whl)
# The listing is read whole first: `unzip -l | grep -q` under pipefail fails at random when grep stops
# reading early and unzip dies of SIGPIPE.
LISTING=$(unzip -l "$WHEEL")
for f in agent/defaults.toml agent/embedded/model/model.safetensors agent/embedded/model/drafts.json.gz \
  agent/realtime/web/index.html; do
  grep -q " $f\$" <<<"$LISTING" || { echo "wheel_test: $f missing from $WHEEL" >&2; exit 1; }
done
if grep -q " benchmarks/" <<<"$LISTING"; then echo "wheel_test: benchmarks/ is in the wheel" >&2; exit 1; fi

echo "wheel_test: installing it into a fresh virtualenv"
python3 -m venv "$WORK/venv"
VPIP="$WORK/venv/bin/pip"
"$VPIP" install -q --upgrade pip
# The same torch as the project's environment (a CPU build when that is what bootstrap installed).
TORCH=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])")
if "$PY" -c "import torch, sys; sys.exit(torch.version.cuda is None)"; then
  "$VPIP" install -q "torch==$TORCH"
else
  "$VPIP" install -q "torch==$TORCH" --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || "$VPIP" install -q "torch==$TORCH"
fi
"$VPIP" install -q "$WHEEL"

echo "wheel_test: running the installed quickturn outside the repository"
mkdir "$WORK/run"
cp demo/03_time.wav "$WORK/run/what_time.wav"
cd "$WORK/run"
export PATH="$WORK/venv/bin:$PATH"
where=$(python -c "import agent; print(agent.__file__)")
case "$where" in "$WORK/venv/"*) ;; *) echo "wheel_test: agent imported from $where" >&2; exit 1;; esac
if python -c "import benchmarks" 2>/dev/null; then echo "wheel_test: benchmarks is installed" >&2; exit 1; fi
quickturn --version
help=$(quickturn demo --help)
grep -q "examples:" <<<"$help"
# Without a checkout the demo clips are not there: a clear error (exit 2), not a crash.
if quickturn demo >out.txt 2>err.txt; then echo "wheel_test: demo without clips succeeded?" >&2; exit 1; fi
grep -q "^error: the demo clips are not installed" err.txt || { cat out.txt err.txt >&2; exit 1; }
quickturn profile --input what_time.wav --json turn.json
python - <<'PY'
import json

report = json.load(open("turn.json"))
turns = report["turns"]
assert report["summary"]["turns"] == 1, report["summary"]
turn = turns[0]
assert "time" in turn["transcript"].lower(), turn["transcript"]  # the clip asks what time it is
assert turn["reply"].strip(), "empty reply"
assert turn["v2v_ms"] is not None and turn["v2v_ms"] > 0, turn
print(f"wheel_test: you: {turn['transcript']!r}  agent: {turn['reply']!r}  ({turn['v2v_ms']:.0f} ms)")
PY
echo "wheel_test: ok"
