/* cmd/plan.c - plait plan: the jobs a build would run (see cmd/build.c). */
#include "pipeline.h"
#include "core/banned.h"

int cmd_plan(int argc, char **argv)
{
	return build_or_plan(argc, argv, true);
}
