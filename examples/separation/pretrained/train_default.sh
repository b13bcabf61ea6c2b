#!/usr/bin/env bash
# Trains, exports and evaluates the default model that `separate` and
# `load_separator()` use (examples/separation/pretrained/default), and the
# synthetic-only model shipped for fine-tuning (pretrained/synthetic_12k).
#
#   bash examples/separation/pretrained/train_default.sh [TTS_ROOT [CHECK_ROOT]]
#
# Both are the tiny preset's 2 x 64 BLSTM with AutoClip p = 10 + Adam
# (warm-up and cosine decay), seed 0.
#   1. `default` (since 2026-12-07): L_SNR with the tiny preset's defaults
#      for file-backed data, one run from scratch on the 300/20/40 tts2mix
#      build TTS_ROOT: 12000 steps of synthetic low + high register talker
#      pairs, then (warm restart of the learning rate) 9000 steps of batches
#      that are half dynamic mixtures of two different tts2mix *training*
#      voices and half synthetic mixtures of any two synthetic talkers,
#      every mixture at the same RMS (configs.DATA_PRESETS); ~13 minutes on
#      one core of a 2-core VM. Exported as pretrained/default. It replaced
#      the L_MI model fine-tuned from synthetic_12k (`ft_blend50_any_9k` of
#      `python -m examples.separation.recipes`), which scored less on the
#      held-out voices (README, "The TTS speech test bed").
#   2. `synthetic_12k`: 12000 L_MI steps on the embedded synthetic data
#      only (`recipes --recipes synthetic_12k`); ~17 minutes on one core.
# The TTS builds (free Debian voices; need the apt packages named in the
# README) are made first when missing: TTS_ROOT, and CHECK_ROOT, 200
# mixtures of the same held-out voices with new texts (seed 1), which no
# choice looked at. Training outputs (without checkpoints):
# results/pretrained/train_default/; evaluations of both exports:
# results/pretrained/.
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT="${1:-${TMPDIR:-/tmp}/tts2mix_300}"
CHECK="${2:-${TMPDIR:-/tmp}/tts2mix_check_s1}"
if [ ! -f "$ROOT/voices.json" ]; then
  python -m examples.separation.tts2mix --root "$ROOT" --num-train 300 \
    --num-valid 20 --num-test 40 --seed 0 --jobs 2
fi
if [ ! -f "$CHECK/voices.json" ]; then
  python -m examples.separation.tts2mix --root "$CHECK" --num-train 10 \
    --num-valid 4 --num-test 200 --seed 1 --jobs 2
fi
# A fresh run: checkpoints left by an earlier one would be exported instead.
rm -rf results/pretrained/train_default
python -m examples.separation.train --loss snr --seed 0 --data wsj0-2mix \
  --data-root "$ROOT" --num-test 40 --no-progress \
  --workdir results/pretrained/train_default
python -m examples.separation.separator results/pretrained/train_default \
  examples/separation/pretrained/default \
  --note "tiny preset, loss snr, AutoClip p=10, seed 0; the file-data defaults on a 300/20/40 tts2mix build (12000 synthetic steps, then 9000 steps of dynamic mixtures of distinct training voices + 50 % synthetic any-pairs, levels normalised): bash examples/separation/pretrained/train_default.sh"
python -m examples.separation.recipes --tts-root "$ROOT" \
  --recipes synthetic_12k --workdir results/recipes
python -m examples.separation.separator results/recipes/synthetic_12k \
  examples/separation/pretrained/synthetic_12k \
  --note "tiny preset, loss mi, AutoClip p=10, seed 0; 12000 steps on the embedded synthetic data: bash examples/separation/pretrained/train_default.sh"
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
