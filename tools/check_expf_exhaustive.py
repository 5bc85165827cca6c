"""sg_expf (symgrad/emit/c/float_math.h) against the branching version it replaced, on all 2**32 floats.

    python tools/check_expf_exhaustive.py        # about a minute on one core

The float32 kernels' exp became branch-free (issue 17: a softmax's loop of exps vectorizes).  It
must give the same bits as before for every input, NaN payloads, infinities, subnormal results
and the overflow and underflow edges included, or float32 results would change.  This compiles
the header's sg_expf beside REFERENCE (the branching version, kept here verbatim) with ``$CC``
(else cc), -O2 -ffp-contract=off, compares the bit patterns of the two for every 32-bit input,
prints the count of differences (and the first few) and exits 1 when there is one.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

HEADER = Path(__file__).resolve().parent.parent / "symgrad" / "emit" / "c" / "float_math.h"

#: sg_expf as it was before it became branch-free (symgrad 0.1.0, commit 8d230b0), with sg_pow2f,
#: which only it used
REFERENCE = r"""
/* 2**k as a float, for -149 <= k <= 127 (subnormal results included). */
static float sg_pow2f(int k)
{
    if (k >= -126)
        return sg_bits_to_float((uint32_t)(k + 127) << 23);
    return sg_bits_to_float((uint32_t)1 << (k + 149));
}

static float sg_expf_reference(float x)
{
    float p;
    int k;
    if (x != x)
        return x;
    if (x > 88.7228394f)
        return 1.0f / 0.0f;
    if (x < -103.972084f)
        return 0.0f;
    p = sg_expf_reduced(x, &k);
    if (k > 127)
        return p * sg_pow2f(127) * sg_pow2f(k - 127);
    if (k < -126)
        return p * sg_pow2f(k + 64) * sg_pow2f(-64);
    return p * sg_pow2f(k);
}
"""

MAIN = r"""
#include <stdio.h>
int main(void)
{
    uint64_t u, bad = 0;
    for (u = 0; u <= 0xffffffffu; ++u) {
        const float x = sg_bits_to_float((uint32_t)u);
        if (sg_float_to_bits(sg_expf(x)) != sg_float_to_bits(sg_expf_reference(x))) {
            if (bad++ < 5) printf("differs at input bits %08x\n", (unsigned)u);
        }
    }
    printf("%llu of 4294967296 inputs differ\n", (unsigned long long)bad);
    return bad != 0;
}
"""


def main() -> int:
    cc = shlex.split(os.environ.get("CC") or "cc")
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "check.c"
        source.write_text(HEADER.read_text() + REFERENCE + MAIN)
        program = Path(folder) / "check"
        built = subprocess.run([*cc, "-std=c99", "-O2", "-ffp-contract=off", "-Wno-unused-function", str(source),
                                "-o", str(program)], capture_output=True, text=True)
        if built.returncode != 0:
            print(built.stderr, file=sys.stderr)
            return 2
        done = subprocess.run([str(program)], capture_output=True, text=True)
        print(done.stdout, end="")
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
