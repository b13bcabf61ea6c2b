#!/usr/bin/env bash
# Trains, exports and evaluates the default model that `separate` and
# `load_separator()` use (examples/separation/pretrained/default), and the
# synthetic-only model it starts from (pretrained/synthetic_12k).
#
#   bash examples/separation/pretrained/train_default.sh [TTS_ROOT [CHECK_ROOT]]
#
# Recipe (both stages: the tiny preset's L_MI network, 2 x 64 BLSTM,
# AutoClip p = 10 + Adam with warm-up and cosine decay, seed 0):
#   1. `synthetic_12k`: 12000 steps on the embedded synthetic two-talker data
#      (a low- and a high-register talker per mixture); ~17 minutes on one
#      core of a 2-core VM. Exported as pretrained/synthetic_12k.
#   2. `ft_blend50_any_9k`: that model fine-tuned for 9000 steps on batches
#      that are half dynamic mixtures of the tts2mix *training* voices and
#      half synthetic mixtures of any two synthetic talkers (same-register
#      pairs included); ~6 minutes on one core. Exported as
#      pretrained/default.
# `python -m examples.separation.recipes` trained the candidate recipes and
# scored each on the *unseen* test voices of the 300/20/40 tts2mix build
# TTS_ROOT (results/recipes/table.md); the choice was then checked on 200
# fresh mixtures of the same held-out voices (CHECK_ROOT: a seed-1 build
# with new texts), which no choice looked at. The TTS builds (free Debian
# voices; need the apt packages named in the README) are made first when
# missing. Results: results/recipes/ (training, the TTS evaluation) and
# results/pretrained/ (evaluations of both exports).
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT="${1:-${TMPDIR:-/tmp}/tts2mix_300}"
CHECK="${2:-${TMPDIR:-/tmp}/tts2mix_check_s1}"
FT=ft_blend50_any_9k
if [ ! -f "$ROOT/voices.json" ]; then
  python -m examples.separation.tts2mix --root "$ROOT" --num-train 300 \
    --num-valid 20 --num-test 40 --seed 0 --jobs 2
fi
if [ ! -f "$CHECK/voices.json" ]; then
  python -m examples.separation.tts2mix --root "$CHECK" --num-train 10 \
    --num-valid 4 --num-test 200 --seed 1 --jobs 2
fi
NOTE="tiny preset, loss mi, AutoClip p=10, seed 0"
python -m examples.separation.recipes --tts-root "$ROOT" \
  --recipes synthetic_12k --workdir results/recipes
python -m examples.separation.separator results/recipes/synthetic_12k \
  examples/separation/pretrained/synthetic_12k \
  --note "$NOTE; 12000 steps on the embedded synthetic data: bash examples/separation/pretrained/train_default.sh"
python -m examples.separation.recipes --tts-root "$ROOT" \
  --recipes "$FT" --workdir results/recipes
python -m examples.separation.separator "results/recipes/$FT" \
  examples/separation/pretrained/default \
  --note "$NOTE; synthetic_12k fine-tuned for 9000 steps on tts2mix training voices (dynamic mixing) + 50 % synthetic any-pair mixtures: bash examples/separation/pretrained/train_default.sh"
for model in default synthetic_12k; do
  for spec in "tts wsj0-2mix $ROOT 100" "check wsj0-2mix $CHECK 200" \
    "synthetic synthetic - 100"; do
    set -- $spec
    extra=()
    [ "$3" != "-" ] && extra=(--data-root "$3")
    out="results/pretrained/$model/$1"
    python -m examples.separation.evaluate \
      --model "examples/separation/pretrained/$model" --data "$2" \
      "${extra[@]}" --split test --num "$4" --no-progress --workdir "$out"
    # The same with 1 s chunks (0.25 s overlap): what the seams of the
    # chunked processing of long files cost.
    if [ "$model" = default ] && [ "$1" != check ]; then
      python -m examples.separation.evaluate \
        --model "examples/separation/pretrained/$model" --data "$2" \
        "${extra[@]}" --split test --num "$4" --no-progress --chunk-seconds 1 \
        --overlap-seconds 0.25 --num-wavs 0 --workdir "${out}_chunked"
    fi
  done
done
python -m examples.separation.pretrained_summary "$ROOT" "$CHECK"
