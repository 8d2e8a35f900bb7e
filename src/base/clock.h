/* clock.h — the one clock of libmimo: monotonic seconds, for step times,
 * checkpoint cadence, time limits and traces. */
#ifndef MIMO_BASE_CLOCK_H
#define MIMO_BASE_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double mimo_clock(void);

#endif
