/* dnnl_ctx.c — a oneDNN CPU engine and stream, and a primitive's run on
 * the stream inside the test hook (see dnnl_ctx.h). */
#define _DEFAULT_SOURCE /* NSIG */
#include "core/dnnl_ctx.h"
#include "core/graph_impl.h" /* mimo_sgemm */

#ifdef MIMO_CONV_DNNL
#include <cblas.h>
#include <signal.h>
#include <stdatomic.h>

#define OK(call) ((call) == dnnl_success)

int mimo_dnnl_open(dnnl_engine_t *eng, dnnl_stream_t *st)
{
    *eng = NULL, *st = NULL;
    if (OK(dnnl_engine_create(eng, dnnl_cpu, 0)) &&
        OK(dnnl_stream_create(st, *eng, dnnl_stream_default_flags)))
        return 0;
    mimo_dnnl_close(*eng, *st);
    *eng = NULL, *st = NULL;
    return -1;
}

void mimo_dnnl_close(dnnl_engine_t eng, dnnl_stream_t st)
{
    dnnl_stream_destroy(st);
    dnnl_engine_destroy(eng);
}

#ifdef MIMO_TEST_HOOKS
void (*mimo_conv_dnnl_hook)(int entering);
#define HOOK(e) (mimo_conv_dnnl_hook ? mimo_conv_dnnl_hook(e) : (void)0)
#else
#define HOOK(e) ((void)0)
#endif

int mimo_dnnl_run(dnnl_stream_t st, dnnl_primitive_t prim, int n,
                  const dnnl_exec_arg_t *args)
{
    HOOK(1);
    int rc = OK(dnnl_primitive_execute(prim, st, n, args)) && OK(dnnl_stream_wait(st))
                 ? 0 : -1;
    HOOK(0);
    return rc;
}

int mimo_dnnl_signal_safe(void)
{
    sigset_t blocked;
    if (pthread_sigmask(SIG_BLOCK, NULL, &blocked))
        return 0;
    for (int s = 1; s < NSIG; s++) {
        struct sigaction sa;
        if (s == SIGSEGV || s == SIGBUS || s == SIGFPE || s == SIGILL || s == SIGTRAP ||
            s == SIGABRT ||
            s == SIGSYS || s == SIGKILL || s == SIGSTOP || sigaction(s, NULL, &sa))
            continue; /* made by the thread itself, or none */
        int handled = (sa.sa_flags & SA_SIGINFO) ||
                      (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
        if (handled && sigismember(&blocked, s) != 1)
            return 0;
    }
    return 1;
}

int mimo_sgemm_dnnl(void)
{
    static atomic_int safe = -1;
    int v = atomic_load(&safe);
    if (v < 0) {
        v = mimo_dnnl_signal_safe();
        atomic_store(&safe, v);
    }
    return v;
}

void mimo_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                const float *a, int lda, const float *b, int ldb, float beta, float *c,
                int ldc)
{
    if ((long)m * n * k < (1L << 18) || order != CblasRowMajor || !mimo_sgemm_dnnl())
        cblas_sgemm((CBLAS_ORDER)order, (CBLAS_TRANSPOSE)ta, (CBLAS_TRANSPOSE)tb, m, n, k,
                    alpha, a, lda, b, ldb, beta, c, ldc);
    else
        dnnl_sgemm(ta == CblasTrans ? 'T' : 'N', tb == CblasTrans ? 'T' : 'N', m, n, k,
                   alpha, a, lda, b, ldb, beta, c, ldc);
}
#endif /* MIMO_CONV_DNNL */
