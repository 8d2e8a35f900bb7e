/* cmd_gen.c — `mimo gen NAME --out F`: built-in datasets of the seeds. */
#include "cli.h"

int mimo_cmd_gen(int argc, char **argv)
{
    (void)argc, (void)argv;
    return mimo_cli_usage_error("gen: not built yet");
}
