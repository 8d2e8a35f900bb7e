/* test_balance.c — task balancing's pieces against cases solved by hand:
 * MGDA-UB's min-norm weights (two opposed gradients meet half way; three
 * orthonormal ones get a third each; a gradient inside the others' hull
 * takes all the weight; the weights stay on the simplex), PCGrad's order
 * of the other heads (a permutation of them, the same for the same step,
 * another for another step), and which parameters count as shared (found
 * from the graph: trunk yes, heads' own layers no). The float64 oracles
 * of the whole methods are tests/torch/pcgrad.py and mgda.py. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/balance.h"
#include "mimo/mimo.h"

static double sum(const double *a, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += a[i];
    return s;
}

static void test_min_norm(void **state)
{
    (void)state;
    double a[3];
    /* g1 = (1, 0), g2 = (-1, 0): the least norm is 0, half and half */
    const double opposed[4] = {1, -1, -1, 1};
    mimo_balance_min_norm(opposed, 2, a);
    assert_true(fabs(a[0] - 0.5) < 1e-12 && fabs(a[1] - 0.5) < 1e-12);
    /* orthonormal: a third each (Frank-Wolfe gets within its 1e-5 stop) */
    const double eye[9] = {1, 0, 0, 0, 1, 0, 0, 0, 1};
    mimo_balance_min_norm(eye, 3, a);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(a[i] - 1.0 / 3) < 2e-3);
    assert_true(fabs(sum(a, 3) - 1) < 1e-12);
    /* g1 = (1, 0), g2 = (0, 1), g3 = (0.2, 0.2): the hull's point nearest
     * the origin is g3 itself (norm^2 0.08; both edges from it move away):
     * all the weight on it */
    const double inside[9] = {1, 0, 0.2, 0, 1, 0.2, 0.2, 0.2, 0.08};
    mimo_balance_min_norm(inside, 3, a);
    assert_true(a[2] > 0.99 && fabs(sum(a, 3) - 1) < 1e-12);
    for (int i = 0; i < 3; i++)
        assert_true(a[i] >= 0);
}

static void test_order(void **state)
{
    (void)state;
    int o[7], p[7], seen[8];
    for (int i = 0; i < 8; i++) {
        memset(seen, 0, sizeof seen);
        mimo_balance_order(8, 42, 3, 17, i, o);
        mimo_balance_order(8, 42, 3, 17, i, p);
        assert_memory_equal(o, p, sizeof o); /* the same for the same step */
        for (int k = 0; k < 7; k++) {
            assert_true(o[k] >= 0 && o[k] < 8 && o[k] != i);
            seen[o[k]]++;
        }
        for (int j = 0; j < 8; j++)
            assert_int_equal(seen[j], j == i ? 0 : 1);
    }
    int differ = 0; /* another step, another order (some of 8 heads' 7!) */
    for (int s = 0; s < 8; s++) {
        mimo_balance_order(8, 42, 3, 17, 0, o);
        mimo_balance_order(8, 42, 3, 18 + s, 0, p);
        differ += memcmp(o, p, sizeof o) != 0;
    }
    assert_true(differ >= 6);
}

static void test_shared(void **state)
{
    (void)state;
    static const char *yaml =
        "inputs: {x: {shape: 4}}\n"
        "layers:\n"
        "  t: {type: dense, units: 5, from: x}\n"     /* 4 x 5 + 5 = 25 */
        "  y1: {type: dense, units: 2, from: t}\n"
        "  y2: {type: dense, units: 1, from: t}\n"
        "outputs: {y1: {loss: mse}, y2: {loss: mse}}\n";
    mimo_spec spec;
    mimo_graph *g = NULL;
    mimo_balance *b = NULL;
    assert_int_equal(mimo_config_parse(yaml, strlen(yaml), NULL, NULL, 0, &spec), 0);
    assert_int_equal(mimo_graph_compile(&spec, 8, 0, &g), 0);
    assert_int_equal(mimo_balance_create(g, &b), 0);
    assert_int_equal((int)mimo_balance_shared(b), 25); /* t's, not y1's, y2's */
    mimo_balance_free(&b);
    mimo_graph_free(&g);
    mimo_spec_free(&spec);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_min_norm),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_shared),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
