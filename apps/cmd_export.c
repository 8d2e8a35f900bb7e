/* cmd_export.c — `mimo export onnx CHECKPOINT|RUN_DIR --out F.onnx
 * [--opset N]` and `mimo export torch CHECKPOINT|RUN_DIR --out F.py`: a
 * trained model for other runtimes and for PyTorch (mimo/export.h). Runs
 * on rank 0 alone. Only parses arguments; usage errors exit 2, failures
 * exit 1. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mimo/export.h"

static const char *usage =
    "usage: mimo export onnx CHECKPOINT|RUN_DIR --out FILE.onnx [--opset N]\n"
    "       mimo export torch CHECKPOINT|RUN_DIR --out FILE.py\n"
    "\n"
    "Writes the model of a checkpoint (or a run directory's newest one) as\n"
    "an ONNX file for inference in other runtimes (onnxruntime, ...): dropout\n"
    "removed, batch_norm with its moving statistics; inputs and outputs named\n"
    "as the model's inputs and heads, the batch axis dynamic, each head's\n"
    "output as mimo predict writes it.\n"
    "torch writes a self-contained PyTorch module (plain torch.nn, no mimo\n"
    "import) whose load_mimo(CHECKPOINT) gives the model with its weights.\n"
    "  --out FILE   the .onnx or .py file (written whole or not at all)\n"
    "  --opset N    ONNX opset, 13 to 17 (default "
    MIMO_CLI_STR(MIMO_ONNX_OPSET_DEFAULT) "; layer_norm needs 17)\n";

int mimo_cmd_export(int argc, char **argv)
{
    const char *format = NULL, *ckpt = NULL, *out = NULL;
    long opset = MIMO_ONNX_OPSET_DEFAULT;
    for (int i = 0; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (mimo_cli_is(s, "--out")) {
            if (!(out = mimo_cli_value(argc, argv, &i)))
                return mimo_cli_usage_error("export: --out needs a value");
        } else if (mimo_cli_is(s, "--opset")) {
            int rc = mimo_cli_long(s, mimo_cli_value(argc, argv, &i), 1, &opset);
            if (rc)
                return rc;
        } else if (s[0] == '-' && s[1] != '\0') {
            return mimo_cli_usage_error("export: unknown option '%s'", s);
        } else if (!format) {
            format = s;
        } else if (!ckpt) {
            ckpt = s;
        } else {
            return mimo_cli_usage_error("export: unexpected argument '%s'", s);
        }
    }
    int torch = format && strcmp(format, "torch") == 0;
    if (!format || (!torch && strcmp(format, "onnx") != 0))
        return mimo_cli_usage_error("export: the format must be 'onnx' or 'torch' "
                                    "(got %s)", format ? format : "none");
    if (!ckpt)
        return mimo_cli_usage_error("export: missing CHECKPOINT or RUN_DIR");
    if (!out)
        return mimo_cli_usage_error("export: missing --out FILE");
    if (torch ? mimo_export_torch(ckpt, out) : mimo_export_onnx(ckpt, out, (int)opset))
        return mimo_cli_fail();
    printf("wrote %s\n", out);
    return 0;
}
