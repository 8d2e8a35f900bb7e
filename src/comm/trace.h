/* trace.h — Chrome trace-event JSON (opens in Perfetto / chrome://tracing):
 * one track per rank with data wait, forward, backward per layer, each
 * gradient bucket's allreduce start and wait, and the optimizer. Events go
 * into a buffer sized once; nothing is allocated while training. */
#ifndef MIMO_COMM_TRACE_H
#define MIMO_COMM_TRACE_H


#include <mpi.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mimo_trace mimo_trace;

/* A trace for this rank with room for `capacity` events (later ones are
 * dropped and counted). */
int mimo_trace_create(int rank, size_t capacity, mimo_trace **out);
void mimo_trace_free(mimo_trace **t);

/* Microseconds since the trace started. */
double mimo_trace_now(const mimo_trace *t);

/* A complete event [t0, t1] (microseconds) named name (a string that
 * outlives the trace) in category cat. t may be NULL (no-op). */
void mimo_trace_span(mimo_trace *t, const char *cat, const char *name,
                     double t0, double t1);
/* An instant event with an integer argument. */
void mimo_trace_instant(mimo_trace *t, const char *cat, const char *name,
                        long arg);

/* Collective on comm: rank 0 writes every rank's events into one JSON
 * file at path. comm may be MPI_COMM_NULL (one process). */
int mimo_trace_write(mimo_trace *t, MPI_Comm comm, const char *path);

#ifdef __cplusplus
}
#endif
#endif
