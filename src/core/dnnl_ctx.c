/* dnnl_ctx.c — a oneDNN CPU engine and stream, and a primitive's run on
 * the stream inside the test hook (see dnnl_ctx.h). */
#include "core/dnnl_ctx.h"

#ifdef MIMO_CONV_DNNL

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
#endif /* MIMO_CONV_DNNL */
