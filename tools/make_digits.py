"""Write examples/digits.npz: the 8x8 handwritten digits (1,797 images), for examples/digits.json.

Source: scikit-learn's bundled copy (sklearn.datasets.load_digits), which is the test part of the
"Optical Recognition of Handwritten Digits" data set by E. Alpaydin and C. Kaynak, UCI Machine
Learning Repository, https://archive.ics.uci.edu/dataset/80, licensed CC BY 4.0 (attribution:
Alpaydin, E. & Kaynak, C. (1998). Optical Recognition of Handwritten Digits. UCI Machine Learning
Repository. https://doi.org/10.24432/C50P49).  scikit-learn itself is BSD-3-Clause.

The file holds X (1797 x 64 pixel intensities scaled from 0..16 to 0..1, float64) and y (the
digit, int64), in scikit-learn's order.  scikit-learn is needed only to run this script:

    pip install scikit-learn && python tools/make_digits.py
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "examples" / "digits.npz"


def main() -> int:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("make_digits: scikit-learn is not installed; pip install scikit-learn", file=sys.stderr)
        return 2
    digits = load_digits()
    X = (digits.data / 16.0).astype(np.float64)
    y = digits.target.astype(np.int64)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, X=X, y=y)
    OUT.write_bytes(buffer.getvalue())
    print(f"wrote {OUT} ({X.shape[0]} images, {OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
