/* mimo.h — the umbrella header of libmimo: multi-input multi-output neural
 * networks (the Keras functional API's kind) in C11. */
#ifndef MIMO_MIMO_H
#define MIMO_MIMO_H

#include "mimo/bench.h"
#include "mimo/config.h"
#include "mimo/error.h"
#include "mimo/export.h"
#include "mimo/ffi.h"
#include "mimo/fit.h"
#include "mimo/graph.h"
#include "mimo/import.h"
#include "mimo/model.h"
#include "mimo/plugin.h"
#include "mimo/real.h"
#include "mimo/rng.h"
#include "mimo/spec.h"
#include "mimo/summary.h"
#include "mimo/dataset.h"
#include "mimo/dsfile.h"
#include "mimo/checkpoint.h"
#include "mimo/source.h"
#include "mimo/trainer.h"
#include "mimo/version.h"

#endif
