/* real.h — the floating-point type of parameters and activations.
 * float32 in the library users link; double when built with
 * MIMO_REAL_DOUBLE (the test build used for central-difference checks). */
#ifndef MIMO_REAL_H
#define MIMO_REAL_H

#ifdef MIMO_REAL_DOUBLE
typedef double mimo_real;
#else
typedef float mimo_real;
#endif

#endif
