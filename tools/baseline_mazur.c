/* Hand-written C baseline for tools/bench_tiny.py: the 2-2-2 tutorial network (Mazur), sigmoid
 * layers, half squared error, plain simultaneous SGD, biases b1 and b2 frozen.
 *
 * Built by bench_tiny.py as a shared library (gcc -O3 -march=native -fPIC -shared, the flags of
 * symgrad's C backend) and called through ctypes.  mazur_train runs the whole training loop
 * inside C, so one ctypes call (about a microsecond) is all the Python overhead there is and the
 * timing is the loop's own.  mazur_step is one step per call, for the "call from Python" row.
 *
 * theta uses symgrad's layout for this spec: w1 w2 w3 w4 b1 w5 w6 w7 w8 b2, where w1, w2 feed h1
 * from i1, i2; w3, w4 feed h2; w5, w6 feed o1 from h1, h2; w7, w8 feed o2.
 * Written as a person would: parameters in locals for the loop, every derivative of a step taken
 * at the parameters before it (simultaneous update), written back at the end.
 */
#include <math.h>

static inline double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

/* The half-SSE loss at theta for input x[2], target t[2]. */
double mazur_loss(const double *theta, const double *x, const double *t)
{
    double h1 = sigmoid(theta[0] * x[0] + theta[1] * x[1] + theta[4]);
    double h2 = sigmoid(theta[2] * x[0] + theta[3] * x[1] + theta[4]);
    double o1 = sigmoid(theta[5] * h1 + theta[6] * h2 + theta[9]);
    double o2 = sigmoid(theta[7] * h1 + theta[8] * h2 + theta[9]);
    return 0.5 * ((t[0] - o1) * (t[0] - o1) + (t[1] - o2) * (t[1] - o2));
}

/* `steps` SGD steps in place; returns the loss before the last step (like symgrad's step). */
double mazur_train(double *theta, const double *x, const double *t, double lr, long steps)
{
    double w1 = theta[0], w2 = theta[1], w3 = theta[2], w4 = theta[3], b1 = theta[4];
    double w5 = theta[5], w6 = theta[6], w7 = theta[7], w8 = theta[8], b2 = theta[9];
    const double i1 = x[0], i2 = x[1], t1 = t[0], t2 = t[1];
    double loss = 0.0;
    for (long s = 0; s < steps; ++s) {
        double h1 = sigmoid(w1 * i1 + w2 * i2 + b1);
        double h2 = sigmoid(w3 * i1 + w4 * i2 + b1);
        double o1 = sigmoid(w5 * h1 + w6 * h2 + b2);
        double o2 = sigmoid(w7 * h1 + w8 * h2 + b2);
        double e1 = o1 - t1, e2 = o2 - t2;
        loss = 0.5 * (e1 * e1 + e2 * e2);
        double d1 = e1 * o1 * (1.0 - o1);                  /* dE/dnet_o1 */
        double d2 = e2 * o2 * (1.0 - o2);                  /* dE/dnet_o2 */
        double g1 = (d1 * w5 + d2 * w7) * h1 * (1.0 - h1); /* dE/dnet_h1 */
        double g2 = (d1 * w6 + d2 * w8) * h2 * (1.0 - h2); /* dE/dnet_h2 */
        w5 -= lr * d1 * h1; w6 -= lr * d1 * h2;
        w7 -= lr * d2 * h1; w8 -= lr * d2 * h2;
        w1 -= lr * g1 * i1; w2 -= lr * g1 * i2;
        w3 -= lr * g2 * i1; w4 -= lr * g2 * i2;
    }
    theta[0] = w1; theta[1] = w2; theta[2] = w3; theta[3] = w4;
    theta[5] = w5; theta[6] = w6; theta[7] = w7; theta[8] = w8;
    return loss;
}

/* One step: what a single call from Python costs for hand-written C through ctypes. */
double mazur_step(double *theta, const double *x, const double *t, double lr)
{
    return mazur_train(theta, x, t, lr, 1);
}
