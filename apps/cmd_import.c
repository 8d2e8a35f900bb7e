/* cmd_import.c — `mimo import csv|idx`: convert files into datasets. */
#include "cli.h"

int mimo_cmd_import(int argc, char **argv)
{
    (void)argc, (void)argv;
    return mimo_cli_usage_error("import: not built yet");
}
