/* step.c — one training step, the whole of it in order: the exchange
 * clears the gradient buffer; this rank's rows of the global batch, the
 * row weights summed over the global batch, forward, loss, backward (which
 * adds into the gradient buffer; the exchange may start summing as layers
 * finish) — k times with train.accumulate, once per micro-batch; the
 * heads' gradients combined by train.task_balancing; the Gram matrix of
 * train.grad_diagnostics into the epoch's sums; the exchange's finish: the gradient summed over the ranks and
 * the optimizer's update (mimo/exchange.h: local, allreduce or
 * node_shared, chosen once when the runtime attached). Every training
 * loop of mimo runs this function: `mimo train` (loop.c), mimo_fit
 * (fit.c) and `mimo bench`. */
#include "core/model.h"
#include "mimo/fit.h"

#include <string.h>
#include <tgmath.h>

#include "mimo/error.h"

/* A non-finite loss stops training before the update, naming the head. */
static int check_finite(const mimo_model *m, long epoch, long step)
{
    const mimo_graph *g = mimo_model_graph((mimo_model *)m);
    const mimo_head_stats *st = mimo_model_step_stats(m);
    for (int h = 0; h < mimo_graph_n_heads(g); h++)
        if (!isfinite(st[h].loss))
            return mimo_error(MIMO_ENUM, "loss of head '%s' is not finite at "
                              "epoch %ld, step %ld (diverged: lower the "
                              "learning rate or clip gradients)",
                              mimo_graph_head_spec(g, h)->name, epoch + 1,
                              step + 1);
    return 0;
}

void mimo_train_prefetch(mimo_model *m, const mimo_source *src,
                         const uint64_t *order, size_t start, size_t B)
{
    const uint64_t *rows;
    if (!src->prefetch || start >= src->rows)
        return;
    int b = mimo_model_plan(m, order + start, src->rows - start < B ? src->rows - start : B,
                            1, &rows);
    if (b > 0)
        src->prefetch(src->ctx, rows, b);
}

/* Forward, loss and backward of micro-batch j (of k) of the rows read. */
static int micro_step(mimo_model *m, int j, int k, long epoch, long step,
                      mimo_stats *st)
{
    int off, rc, b = mimo_model_micro_rows(m, j, &off);
    mimo_model_micro(m, off, j == k - 1);
    /* a rank without rows still joins the batch statistics' reductions */
    if (b > 0 || mimo_graph_collective(mimo_model_graph(m))) {
        mimo_model_forward(m, b);
        if ((rc = mimo_model_loss(m, b, st)) || (rc = check_finite(m, epoch, step)))
            return rc;
        mimo_model_backward(m, b); /* adds into the gradient buffer */
    }
    return mimo_graph_status(mimo_model_graph(m)); /* met in backward */
}

/* With train.accumulate k > 1 the step runs k micro-steps: this rank's
 * rows of all k micro-batches are read and weighed at once, so that every
 * head's weight sum over the whole global batch (all micro-batches, all
 * ranks: one reduce, as without accumulation) scales each micro-batch's
 * loss from the start; the k backwards add into the one gradient buffer,
 * the last one tells the exchange that layers are done, and finish sums
 * and applies it once. The gradient is the global batch's, and its
 * weight sums are never rescaled afterwards: a head's scale is known
 * before its first backward, which no later rescaling of a buffer that
 * mixes heads in the trunk could undo. */
int mimo_train_step(mimo_model *m, const mimo_source *src, const uint64_t *rows,
                    size_t gb, long epoch, long step, mimo_stats *st)
{
    const uint64_t *mine;
    int rc, k = mimo_model_accumulate(m);
    int b = mimo_model_plan(m, rows, gb, 0, &mine); /* this rank's rows */
    mimo_exchange *x = mimo_model_exchange(m);
    mimo_model_begin_step(m, epoch);
    mimo_exchange_begin_step(x, m); /* the gradient buffer: zeros */
    /* every rank joins the sums of row weights, also without rows */
    if ((rc = mimo_model_read(m, src, mine, b, 1)) ||
        (rc = mimo_model_weigh(m, b, gb)))
        return rc;
    for (int j = 0; j < k; j++)
        if ((rc = micro_step(m, j, k, epoch, step, st)))
            return rc;
    if ((rc = mimo_model_balance(m, epoch, step)) || /* task_balancing */
        (rc = mimo_model_diag_add(m, st))) /* the heads' Gram, mgda_ub's weights */
        return rc;
    /* the update: summed over the ranks, then applied */
    return mimo_exchange_finish(x, m);
}
