/* Float-only elementary functions for float32 kernels: no double anywhere and no libm, so a
 * single-precision FPU (Cortex-M4F) never calls a software double routine, and the same source
 * gives the same bits on every IEEE-754 target compiled without contraction
 * (-ffp-contract=off).  Accuracy: a few ulp over the ranges a network uses (tools/check_float_math.py
 * measures it against the C library in double).  Written for this kernel from textbook methods:
 * Cody-Waite range reduction and Taylor polynomials. */

#include <stdint.h>
#include <string.h>

static float sg_bits_to_float(uint32_t bits) { float f; memcpy(&f, &bits, sizeof f); return f; }
static uint32_t sg_float_to_bits(float f) { uint32_t bits; memcpy(&bits, &f, sizeof bits); return bits; }

/* e**x as 2**k e**r, for k = round(x/ln2) in [-126, 127] (|x| <= 87): no special cases and no
 * branches, so a loop of it (tanh's) vectorizes.  *k_out receives k. */
static inline float sg_expf_reduced(float x, int *k_out)
{
    const float LN2_HI = 0.693145751953125f;          /* 12 significant bits: k*LN2_HI is exact */
    const float LN2_LO = 1.428606765330187e-06f;      /* ln2 - LN2_HI */
    const float LOG2E = 1.44269504088896341f;
    const float k_real = x * LOG2E;
    const int k = (int)(k_real < 0 ? k_real - 0.5f : k_real + 0.5f);
    const float r = (x - (float)k * LN2_HI) - (float)k * LN2_LO;
    const float p = r * (1.0f + r * (1.0f / 2 + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720
        + r * (1.0f / 5040)))))));
    *k_out = k;
    return 1.0f + p;
}

/* e**x: x = k ln2 + r with |r| <= ln2/2 (ln2 split so that k*LN2_HI is exact), then a degree-7
 * Taylor polynomial for e**r - 1 (remainder below 5e-9) and a scaling by 2**k in two steps
 * (2**k1 * 2**k2 with both normal: k2 is 0 unless 2**k alone would overflow or be subnormal).
 * No branches: every case is computed and the answer selected, so a loop of it (softmax's)
 * vectorizes; the same bits as the branching version it replaced, for all 2**32 inputs (checked
 * exhaustively by a C program when it was written; docs/c-backend.md). */
static inline float sg_expf(float x)
{
    const float HI = 88.7228394f, LO = -103.972084f;
    const float xc = x > HI ? HI : (x >= LO ? x : LO);   /* NaN: LO; its result is replaced below */
    int k, k1, k2;
    const float p = sg_expf_reduced(xc, &k);
    k1 = k > 127 ? 127 : (k < -126 ? k + 64 : k);
    k2 = k > 127 ? k - 127 : (k < -126 ? -64 : 0);
    {
        const float scaled = p * sg_bits_to_float((uint32_t)(k1 + 127) << 23)
                             * sg_bits_to_float((uint32_t)(k2 + 127) << 23);
        return x != x ? x : (x > HI ? 1.0f / 0.0f : (x < LO ? 0.0f : scaled));
    }
}

/* e**x - 1 for 0 <= x <= 1.2, where every Taylor term is positive (no cancellation). */
static inline float sg_expm1f_small(float x)
{
    return x * (1.0f + x * (1.0f / 2 + x * (1.0f / 6 + x * (1.0f / 24 + x * (1.0f / 120 + x * (1.0f / 720
        + x * (1.0f / 5040 + x * (1.0f / 40320 + x * (1.0f / 362880 + x * (1.0f / 3628800
        + x * (1.0f / 39916800 + x * (1.0f / 479001600))))))))))));
}

/* log(x): x = 2**e m with sqrt(1/2) <= m < sqrt(2); log m = 2 atanh(s), s = (m - 1)/(m + 1),
 * |s| < 0.172, as an odd series to s**11 (remainder below 2e-10). */
static float sg_logf(float x)
{
    const float LN2_HI = 0.693145751953125f;
    const float LN2_LO = 1.428606765330187e-06f;
    uint32_t bits;
    int e;
    float m, f, s, s2, series;
    if (x != x || x == 1.0f / 0.0f)
        return x;
    if (x < 0)
        return (x - x) / (x - x);              /* NaN */
    if (x == 0)
        return -1.0f / 0.0f;
    e = 0;
    if (x < 1.17549435e-38f) {                 /* subnormal: scale into the normal range */
        x *= 16777216.0f;
        e = -24;
    }
    bits = sg_float_to_bits(x);
    e += (int)(bits >> 23) - 127;
    m = sg_bits_to_float((bits & 0x007fffffu) | 0x3f800000u);  /* 1 <= m < 2 */
    if (m > 1.41421356f) {
        m *= 0.5f;
        e += 1;
    }
    f = m - 1.0f;                               /* exact (Sterbenz) */
    s = f / (2.0f + f);
    s2 = s * s;
    series = s2 * (1.0f / 3 + s2 * (1.0f / 5 + s2 * (1.0f / 7 + s2 * (1.0f / 9 + s2 * (1.0f / 11)))));
    return (float)e * LN2_HI + ((float)e * LN2_LO + (2.0f * s + 2.0f * s * series));
}

/* log(1 + u) for u >= 0, with Goldberg's correction for the rounding of 1 + u. */
static float sg_log1pf(float u)
{
    float w = 1.0f + u;
    if (w == 1.0f)
        return u;
    return sg_logf(w) * (u / (w - 1.0f));
}

/* tanh(x): e/(e + 2) with e = expm1(2|x|) below 0.55, 1 - 2/(e**(2|x|) + 1) above, 1 past 9.1.
 * Both forms are computed and one is selected, without branches, so a loop of it vectorizes. */
static inline float sg_tanhf(float x)
{
    const float a = x < 0 ? -x : x;
    const float c = a > 9.1f || a != a ? 9.1f : a;   /* NaN: any number, the result is x below */
    const float e = sg_expm1f_small(2.0f * c);
    const float small = e / (e + 2.0f);
    int k;
    const float large = 1.0f - 2.0f / (sg_expf_reduced(2.0f * c, &k) * sg_bits_to_float((uint32_t)(k + 127) << 23)
                                       + 1.0f);
    const float t = a > 9.1f ? 1.0f : (c < 0.55f ? small : large);
    return x != x ? x : (x < 0 ? -t : t);
}

/* erf(x).  Below 1: its Taylor series 2/sqrt(pi) sum (-1)**n x**(2n+1) / (n! (2n+1)), 16 terms
 * by Horner's rule.  From 1 to 3.92: 1 - erfc(x), erfc by its continued fraction (60 levels,
 * evaluated from the deepest up), with x*x split exactly (Dekker) for e**(-x*x).  1 past 3.92. */
static float sg_erff(float x)
{
    const float TWO_OVER_SQRT_PI = 1.12837916709551257f;
    const float ONE_OVER_SQRT_PI = 0.564189583547756287f;
    float a = x < 0 ? -x : x, a2 = a * a, c, hi, lo, gauss, sum, result;
    int n;
    if (x != x)
        return x;
    if (a > 3.92f)
        return x < 0 ? -1.0f : 1.0f;
    if (a < 1.0f) {
        /* sum_n (-1)**n a2**n / (n! (2n+1)) as nested factors: 1 - a2/1 (1/3 - a2/2 (1/5 - ...)) */
        sum = 1.0f / 33;
        for (n = 16; n >= 1; n--)
            sum = 1.0f / (float)(2 * n - 1) - a2 / (float)n * sum;
        return TWO_OVER_SQRT_PI * x * sum;
    }
    c = 4097.0f * a;
    hi = c - (c - a);
    lo = a - hi;
    gauss = sg_expf(-(hi * hi)) * sg_expf(-(2.0f * hi * lo + lo * lo));
    sum = a;                                    /* erfc(a) = e**(-a*a)/sqrt(pi) / (a + (1/2)/(a + 1/(a + ...))) */
    for (n = 60; n >= 1; n--)
        sum = a + ((float)n * 0.5f) / sum;
    result = 1.0f - ONE_OVER_SQRT_PI * gauss / sum;
    return x < 0 ? -result : result;
}

/* The activations' float forms. */
static float sg_sigmoidf(float x)
{
    float e;
    if (x >= 0)
        return 1.0f / (1.0f + sg_expf(-x));
    e = sg_expf(x);
    return e / (1.0f + e);
}

static float sg_softplusf(float x)
{
    float a = x < 0 ? -x : x;
    return (x > 0 ? x : 0.0f) + sg_log1pf(sg_expf(-a));
}

/* x**y.  A small integer y (|y| <= 8) by repeated multiplication (a few ulp); otherwise
 * e**(y log|x|) (its error grows with |y log|x||: under 32 ulp while that is below 10, e.g. the
 * optimizers' beta**step), with the sign of x for an odd integer y; NaN for x < 0 and a
 * non-integer y. */
static float sg_powf(float x, float y)
{
    const float a = y < 0 ? -y : y, m = x < 0 ? -x : x;
    const int integer = a < 16777216.0f && (float)(long)a == a;
    const int odd = integer && ((long)a & 1) != 0;
    float result = 1.0f, base = x;
    long k;
    if (y == 0)
        return 1.0f;
    if (x != x || y != y)
        return x + y;
    if (integer && a <= 8.0f) {
        for (k = (long)a; k > 0; k >>= 1) {
            if (k & 1)
                result *= base;
            base *= base;
        }
        return y < 0 ? 1.0f / result : result;
    }
    if (x < 0 && !integer)
        return (x - x) / (x - x);
    if (m == 0)
        result = y > 0 ? 0.0f : 1.0f / 0.0f;
    else
        result = sg_expf(y * sg_logf(m));
    return x < 0 && odd ? -result : result;
}
