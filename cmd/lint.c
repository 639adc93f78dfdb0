/* cmd/lint.c - placeholder */
#include "common.h"
#include "core/banned.h"
int cmd_lint(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 2;
}
