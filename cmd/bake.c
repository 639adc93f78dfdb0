/* cmd/bake.c - placeholder */
#include "common.h"
#include "core/banned.h"
int cmd_bake(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return 2;
}
