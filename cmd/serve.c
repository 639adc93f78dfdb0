/* cmd/serve.c - plait serve --protocol N: the node side of 'plait builder'
 * (run by the local plait over ssh; frames on stdin and stdout, core/frame.h).
 * This increment answers the hello and refuses every job: running jobs on
 * nodes is the next one. Nothing but frames goes to stdout. */
#include <stdio.h>
#include <unistd.h>

#include "common.h"
#include "plait-config.h"
#include "core/frame.h"
#include "platforms/remote.h"
#include "core/banned.h"

static const char usage[] =
	"usage: plait serve --protocol N\n"
	"\n"
	"The node side of 'plait builder': speak the node protocol (version N) on\n"
	"standard input and output. Run by another plait over ssh, not by hand.\n";

static int send_error(long id, const char *msg)
{
	json_auto_t *o = json_pack("{s:s, s:i, s:s}", "type", "error", "id", (json_int_t)id, "message", msg);
	return plait_frame_write_control(STDOUT_FILENO, o, NULL);
}

int cmd_serve(int argc, char **argv)
{
	long protocol = -1;
	for (int i = 1; i < argc; i++) {
		if (streq(argv[i], "-h") || streq(argv[i], "--help")) {
			fputs(usage, stdout);
			return 0;
		}
		if (streq(argv[i], "--protocol") && i + 1 < argc) {
			char *end = NULL;
			protocol = strtol(argv[++i], &end, 10);
			if (!*argv[i] || *end)
				return usage_error("serve", "--protocol: '%s' is not a number", argv[i]);
		} else {
			return usage_error("serve", "unexpected argument '%s'", argv[i]);
		}
	}
	if (protocol < 0)
		return usage_error("serve", "give --protocol N");
	if (protocol != PLAIT_REMOTE_PROTOCOL) {
		char m[160];
		snprintf(m, sizeof(m), "this plait (%s) speaks protocol %d, not %ld: install the same plait on both sides",
			 PLAIT_VERSION, PLAIT_REMOTE_PROTOCOL, protocol);
		send_error(0, m);
		fprintf(stderr, "plait serve: %s\n", m);
		return 1;
	}
	struct plait_error *err = NULL;
	struct plait_frame f;
	size_t n = 0;
	int r = plait_frame_read(STDIN_FILENO, &f, &n, &err);
	if (r <= 0 || f.type != PLAIT_FRAME_CONTROL ||
	    !streq(json_string_value(json_object_get(f.control, "type")), "hello")) {
		const char *m = r < 0 ? err->msg : "the first frame must be a hello";
		send_error(0, m);
		fprintf(stderr, "plait serve: %s\n", m);
		plait_frame_release(&f);
		plait_error_free(err);
		return 1;
	}
	json_t *theirs = json_object_get(f.control, "protocol");
	if (!json_is_integer(theirs) || json_integer_value(theirs) != PLAIT_REMOTE_PROTOCOL) {
		send_error(0, "the hello's protocol differs from --protocol");
		plait_frame_release(&f);
		return 1;
	}
	plait_frame_release(&f);
	json_auto_t *hello = json_pack("{s:s, s:i, s:s, s:[]}", "type", "hello", "protocol", PLAIT_REMOTE_PROTOCOL,
				       "version", PLAIT_VERSION, "features");
	if (plait_frame_write_control(STDOUT_FILENO, hello, &err) < 0)
		goto fail;
	for (;;) {
		r = plait_frame_read(STDIN_FILENO, &f, &n, &err);
		if (r < 0)
			goto fail;
		if (r == 0)
			return 0; /* the other side hung up */
		if (f.type == PLAIT_FRAME_CONTROL) {
			const char *t = json_string_value(json_object_get(f.control, "type"));
			if (streq(t, "bye")) {
				plait_frame_release(&f);
				return 0;
			}
			json_t *id = json_object_get(f.control, "id");
			char m[200];
			snprintf(m, sizeof(m), "'%.64s' is not implemented by plait %s on this node yet", t, PLAIT_VERSION);
			send_error(json_is_integer(id) ? (long)json_integer_value(id) : 0, m);
		}
		plait_frame_release(&f);
	}
fail:
	fprintf(stderr, "plait serve: %s\n", err ? err->msg : "failed");
	plait_error_free(err);
	return 1;
}
