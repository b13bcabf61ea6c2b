"""A tiny wsj0-2mix tree for the tests of commands that read one."""

import numpy as np
import soundfile as sf


def tiny_wsj_tree(root, names=("a", "b", "c"), samples=4000, rate=8000):
  """wav8k/min/{tr,cv,tt}/{mix,s1,s2}: one noise pair per name and split
  (``wav16k`` and 16 kHz files for ``rate=16000``)."""
  rng = np.random.default_rng(0)
  for split in ("tr", "cv", "tt"):
    for name in names:
      s1, s2 = rng.uniform(-0.3, 0.3, (2, samples)).astype(np.float32)
      for folder, audio in (("s1", s1), ("s2", s2), ("mix", s1 + s2)):
        path = (
          root / f"wav{rate // 1000}k" / "min" / split / folder / f"{name}.wav"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), audio, rate, subtype="FLOAT")
