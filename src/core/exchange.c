/* exchange.c — the exchange contract's operations (see mimo/exchange.h)
 * and its one-process implementation, `local`: it owns nothing; the
 * gradient buffer is cleared before backward and the optimizer steps the
 * model's own parameters after it. The MPI implementations (allreduce,
 * node_shared) are in src/comm/dist.c. */
#include "core/exchange.h"

#include "core/graph_impl.h"
#include "core/model.h"

static void local_begin(void *state, mimo_real *grads, size_t n)
{
    (void)state;
    mimo_vec_zero(grads, n);
}

/* grads is also the optimizer's scratch (decay, clipping): the next step
 * clears it */
static int local_finish(void *state, mimo_optim *o, mimo_real *params,
                        mimo_real *grads, size_t n, double lr)
{
    (void)state, (void)n;
    mimo_optim_step(o, params, grads, grads, lr);
    return 0;
}

/* one replica: nothing to compare */
static int local_checksum(void *state, const mimo_real *params, size_t n,
                          long long step)
{
    (void)state, (void)params, (void)n, (void)step;
    return 0;
}

static const mimo_exchange_ops local_ops = {
    .name = "local",
    .owns = 0,
    .begin_step = local_begin,
    .finish = local_finish,
    .checksum = local_checksum,
};

mimo_exchange mimo_exchange_local(void)
{
    return (mimo_exchange){.ops = &local_ops, .writes_state = 1};
}

void mimo_exchange_begin_step(mimo_exchange *x, mimo_model *m)
{
    x->ops->begin_step(x->state, mimo_model_grads(m), mimo_model_trained_count(m));
}

int mimo_exchange_finish(mimo_exchange *x, mimo_model *m)
{
    return x->ops->finish(x->state, mimo_model_optim(m), mimo_model_params(m),
                          mimo_model_grads(m), mimo_model_trained_count(m),
                          mimo_model_lr(m));
}

int mimo_exchange_checksum(mimo_exchange *x, mimo_model *m, long long step)
{
    return x->ops->checksum(x->state, mimo_model_params(m),
                            mimo_model_param_count(m), step);
}

void mimo_exchange_phase(const mimo_exchange *x, mimo_phase p, int end)
{
    if (x->ops->phase)
        x->ops->phase(x->state, p, end);
}
