/* cmd_train.c — `mimo train`, `mimo predict`, `mimo eval`. */
#include "cli.h"

int mimo_cmd_train(int argc, char **argv) { (void)argc, (void)argv; return mimo_cli_usage_error("train: not built yet"); }
int mimo_cmd_predict(int argc, char **argv) { (void)argc, (void)argv; return mimo_cli_usage_error("predict: not built yet"); }
int mimo_cmd_eval(int argc, char **argv) { (void)argc, (void)argv; return mimo_cli_usage_error("eval: not built yet"); }
