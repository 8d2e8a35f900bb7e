/* swish_math.h — the math of the swish kind, in double, one element at a
 * time: y = x sigmoid(beta x) (Ramachandran et al., "Searching for
 * activation functions", 2017; beta = 1 is SiLU). swish.c computes with
 * these; swish_gradcheck.c checks them and swish.c's backward against
 * central differences. */
#ifndef SWISH_MATH_H
#define SWISH_MATH_H

#include <math.h>

static inline double swish_sigmoid(double t)
{
    return t >= 0 ? 1 / (1 + exp(-t)) : exp(t) / (1 + exp(t));
}

/* y */
static inline double swish(double x, double beta)
{
    return x * swish_sigmoid(beta * x);
}

/* dy/dx = s + beta x s (1 - s), s = sigmoid(beta x) */
static inline double swish_dx(double x, double beta)
{
    double s = swish_sigmoid(beta * x);
    return s + beta * x * s * (1 - s);
}

/* dy/dbeta = x^2 s (1 - s) */
static inline double swish_dbeta(double x, double beta)
{
    double s = swish_sigmoid(beta * x);
    return x * x * s * (1 - s);
}

#endif
