/* swish_gradcheck.c — swish.c's forward and backward, compiled in double,
 * against central differences of its forward: for L = sum_i w_i y_i with
 * random w, dL/dx and dL/dbeta from backward must match (L(v + h) -
 * L(v - h)) / 2h to 1e-6 relative, for a fixed and a learned beta. Fails
 * when backward's gradients are all zero, and checks that backward adds
 * into the buffers it is given (mimo's rule). Exit 0: passed. */
#define MIMO_REAL_DOUBLE 1
#include "swish.c"

#include <stdlib.h>
#include <string.h>

#define B 4
#define W 6
#define H 1e-6

static double x[B * W], y[B * W], w[B * W], beta[W];

static double rnd(void) { return 2.0 * rand() / RAND_MAX - 1; }

/* L = sum w y for the current x, beta */
static double loss(const double *args)
{
    const mimo_real *xs[1] = {x}, *ps[1] = {beta};
    int width = W;
    swish_forward(args, B, 1, xs, &width, ps, y, W);
    double l = 0;
    for (int i = 0; i < B * W; i++)
        l += w[i] * y[i];
    return l;
}

/* The worst relative error of the analytic gradient g of v[0, n) */
static double compare(const double *args, double *v, const double *g, int n,
                      double *norm)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + H;
        double up = loss(args);
        v[i] = keep - H;
        double down = loss(args);
        v[i] = keep;
        double num = (up - down) / (2 * H);
        double err = fabs(num - g[i]) / fmax(1e-3, fabs(num) + fabs(g[i]));
        worst = fmax(worst, err);
        *norm += fabs(g[i]);
    }
    return worst;
}

static int check(int learn)
{
    double args[2] = {1.3, learn};
    double dx[B * W], dbeta[W], gx[B * W], gbeta[W];
    const mimo_real *xs[1] = {x}, *ps[1] = {beta};
    mimo_real *dxs[1] = {dx}, *dps[1] = {learn ? dbeta : NULL};
    int width = W, failed = 0;
    for (int i = 0; i < B * W; i++)
        x[i] = 3 * rnd(), w[i] = rnd();
    for (int j = 0; j < W; j++)
        beta[j] = 0.5 + j * 0.3;
    loss(args);
    /* backward adds: start from ones, the gradient is what it added */
    for (int i = 0; i < B * W; i++)
        dx[i] = 1;
    for (int j = 0; j < W; j++)
        dbeta[j] = 1;
    swish_backward(args, B, 1, xs, &width, ps, y, w, W, dxs, dps);
    for (int i = 0; i < B * W; i++)
        gx[i] = dx[i] - 1;
    for (int j = 0; j < W; j++)
        gbeta[j] = dbeta[j] - 1;
    double nx = 0, nb = 0;
    double ex = compare(args, x, gx, B * W, &nx);
    double eb = learn ? compare(args, beta, gbeta, W, &nb) : 0;
    printf("learn_beta %d: dx worst relative error %.2e (|g| %.3f)", learn, ex, nx);
    if (learn)
        printf(", dbeta %.2e (|g| %.3f)", eb, nb);
    printf("\n");
    if (ex > 1e-6 || eb > 1e-6 || nx < 1e-3 || (learn && nb < 1e-3)) {
        fprintf(stderr, "swish_gradcheck: FAILED (learn_beta %d)\n", learn);
        failed = 1;
    }
    return failed;
}

int main(void)
{
    srand(7);
    int failed = check(0) + check(1);
    if (!failed)
        printf("swish_gradcheck: passed\n");
    return failed ? 1 : 0;
}
