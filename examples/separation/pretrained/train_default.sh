#!/usr/bin/env bash
# Trains, exports and evaluates the default model that `separate` and
# `load_separator()` use (examples/separation/pretrained/default).
#
#   bash examples/separation/pretrained/train_default.sh [TTS_ROOT]
#
# Recipe: the tiny preset's L_MI defaults (2 x 64 BLSTM, AutoClip p = 10 +
# Adam 2e-3 with warm-up and cosine decay, 3000 steps) on a 300/20/40
# tts2mix build of Debian's free TTS voices (built first if TTS_ROOT has
# none; needs the apt packages named in the README). Results go to
# results/tts (training) and results/pretrained (evaluations).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT="${1:-${TMPDIR:-/tmp}/tts2mix_300}"
if [ ! -f "$ROOT/voices.json" ]; then
  python -m examples.separation.tts2mix --root "$ROOT" --num-train 300 \
    --num-valid 20 --num-test 40 --seed 0 --jobs 2
fi
python -m examples.separation.compare --losses mi --clips autoclip \
  --data wsj0-2mix --data-root "$ROOT" --workdir results/tts
python -m examples.separation.separator results/tts/mi/autoclip_p10 \
  examples/separation/pretrained/default \
  --note "tiny preset, loss mi, AutoClip p=10, 3000 steps on a 300/20/40 tts2mix build (seed 0, free voices): bash examples/separation/pretrained/train_default.sh"
for spec in "tts wsj0-2mix $ROOT" "synthetic synthetic -"; do
  set -- $spec
  extra=()
  [ "$3" != "-" ] && extra=(--data-root "$3")
  python -m examples.separation.evaluate --data "$2" "${extra[@]}" \
    --split test --num 100 --no-progress --workdir "results/pretrained/$1"
  # The same with 1 s chunks (0.25 s overlap): what the seams of the
  # chunked processing of long files cost.
  python -m examples.separation.evaluate --data "$2" "${extra[@]}" \
    --split test --num 100 --no-progress --chunk-seconds 1 \
    --overlap-seconds 0.25 --num-wavs 0 --workdir "results/pretrained/${1}_chunked"
done
