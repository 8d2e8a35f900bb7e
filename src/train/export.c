/* export.c — mimo_export_onnx (mimo/export.h): a checkpoint's spec and
 * parameters into a graph, written by io/onnx.c. */
#include "mimo/export.h"

#include <stddef.h>

#include "core/model.h"
#include "io/onnx.h"
#include "mimo/checkpoint.h"
#include "mimo/config.h"
#include "mimo/error.h"
#include "mimo/trainer.h"

_Static_assert(MIMO_ONNX_OPSET_DEFAULT >= MIMO_ONNX_OPSET_MIN &&
                   MIMO_ONNX_OPSET_DEFAULT <= MIMO_ONNX_OPSET_MAX,
               "the default opset is one mimo writes");

int mimo_export_onnx(const char *checkpoint, const char *out, int opset)
{
    char path[4096];
    mimo_spec spec;
    mimo_model *m = NULL;
    int rc = mimo_find_checkpoint(checkpoint, path, sizeof path);
    if (rc || (rc = mimo_checkpoint_spec(path, NULL, 0, &spec)))
        return rc;
    spec.train.batch_size = 1; /* buffers for one row: the graph is only walked */
    if (!(rc = mimo_model_create(&spec, &m)) &&
        !(rc = mimo_checkpoint_load(path, m, NULL, NULL, NULL)))
        rc = mimo_onnx_write(mimo_model_graph(m), mimo_model_params(m),
                             opset ? opset : MIMO_ONNX_OPSET_DEFAULT, out);
    mimo_model_free(&m);
    mimo_spec_free(&spec);
    return rc;
}
