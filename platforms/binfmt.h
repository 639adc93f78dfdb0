/* platforms/binfmt.h - QEMU handlers in the kernel's binfmt_misc: status and install.
 *
 * Contract:
 *  - One table maps each architecture plait knows (GOARCH names, as
 *    plait_platform_known_arches()) to its QEMU target name, its ELF class and
 *    e_machine, and the magic/mask strings that qemu-binfmt-conf.sh and Debian's
 *    qemu-user-static binfmt.d files use, written with \x escapes as the kernel's
 *    register file expects them.
 *  - Every function that reads or writes binfmt_misc takes the directory
 *    (normally PLAIT_BINFMT_DIR) so tests can point it at a fake one.
 *  - A handler serves an architecture when it is named qemu-<qemu name> or when
 *    its magic/mask (offset 0) accepts that architecture's ELF header.
 *  - Handlers are registered with the flags F and P: F makes the kernel open
 *    the interpreter at registration, so it works inside a chroot (the RUN
 *    sandbox); P keeps argv[0], which multi-call binaries need (busybox
 *    runs `sleep` as itself named "sleep").
 *  - install never touches an architecture the host runs natively, is
 *    idempotent, and replaces a handler without F or P by one with both.
 *  - Nothing here prints; errors follow core/error.h. */
#ifndef PLAIT_BINFMT_H
#define PLAIT_BINFMT_H

#include "core/error.h"

#define PLAIT_BINFMT_DIR "/proc/sys/fs/binfmt_misc"
#define PLAIT_BINFMT_INTERP_DIR "/usr/bin"
/* Where plait reads handlers from for status and for choosing builders:
 * $PLAIT_BINFMT_DIR when set (a copy or another mount of binfmt_misc, e.g.
 * for a node of 'plait builder' whose handlers live elsewhere), else
 * PLAIT_BINFMT_DIR. 'plait qemu install' always writes PLAIT_BINFMT_DIR. */
const char *plait_binfmt_dir(void);
/* ELF header bytes a magic/mask covers; the kernel allows up to 128. */
#define PLAIT_BINFMT_MAX_MAGIC 128

struct plait_binfmt_arch {
	const char *arch;   /* GOARCH: "arm64" */
	const char *qemu;   /* QEMU target: "aarch64" (interpreter qemu-aarch64-static) */
	unsigned elf_class; /* 1 = 32-bit, 2 = 64-bit */
	bool big_endian;    /* EI_DATA = ELFDATA2MSB */
	unsigned e_machine; /* EM_AARCH64 = 183, … */
	const char *magic;  /* "\\x7fELF\\x02…" as text */
	const char *mask;
};

/* The table, in plait_platform_known_arches() order; *n gets its length. */
const struct plait_binfmt_arch *plait_binfmt_arches(size_t *n);
/* Look up a GOARCH name or alias ("arm64", "aarch64", "arm/v7", "linux/arm64");
 * NULL when unknown. */
const struct plait_binfmt_arch *plait_binfmt_arch_lookup(const char *arch);

/* Decode "\x7fELF\x02" into bytes (the kernel's rules: \xHH and \\, anything
 * else literal). -PLAIT_E_INVALID when malformed or longer than max. */
int plait_binfmt_unescape(const char *s, uint8_t *out, size_t max, size_t *len,
			  struct plait_error **err);

/* One handler, as read from DIR/<name>. */
struct plait_binfmt_entry {
	char *name;
	bool enabled;
	char *interpreter; /* NULL when absent */
	char *flags;	   /* "F", "OCF", "" */
	bool is_extension; /* "extension .jar" rather than magic */
	size_t offset;
	uint8_t magic[PLAIT_BINFMT_MAX_MAGIC];
	size_t magic_len;
	uint8_t mask[PLAIT_BINFMT_MAX_MAGIC];
	size_t mask_len; /* 0 = no mask (all bits count) */
};

/* Parse the text of an entry file. -PLAIT_E_INVALID on what the kernel never writes. */
int plait_binfmt_entry_parse(const char *name, const char *text, struct plait_binfmt_entry *out,
			     struct plait_error **err);
void plait_binfmt_entry_release(struct plait_binfmt_entry *e);
bool plait_binfmt_entry_has_flag(const struct plait_binfmt_entry *e, char flag);
/* Does e accept executables of architecture a? */
bool plait_binfmt_entry_matches(const struct plait_binfmt_entry *e,
				const struct plait_binfmt_arch *a);

/* Is binfmt_misc mounted at dir (does dir/register exist)? */
bool plait_binfmt_mounted(const char *dir);
/* Read every handler in dir (all files but "register" and "status"), sorted by
 * name. -PLAIT_E_NOT_FOUND with the 'plait qemu install' hint when not mounted. */
int plait_binfmt_read(const char *dir, struct plait_binfmt_entry **out, size_t *n,
		      struct plait_error **err);
void plait_binfmt_entries_free(struct plait_binfmt_entry *v, size_t n);

/* Can the host (GOARCH host_arch) run arch without emulation? The host's own
 * arch; 386 on amd64; arm on arm64 when the CPU has AArch32 (aarch32 true). */
bool plait_binfmt_native(const char *host_arch, bool aarch32, const char *arch);
/* Does this arm64 CPU run AArch32 code? Read from /proc/cpuinfo and sysfs. */
bool plait_binfmt_host_aarch32(void);

/* The handler that serves a, best first: enabled with F, enabled, any. -1 when none. */
int plait_binfmt_find(const struct plait_binfmt_entry *v, size_t n,
		      const struct plait_binfmt_arch *a);

struct plait_binfmt_status {
	const struct plait_binfmt_arch *arch;
	bool native;
	bool registered;       /* a handler serves it */
	bool enabled;	       /* … and is enabled */
	bool fix_binary;       /* … and has the F flag */
	bool preserve_argv0;   /* … and has the P flag */
	char *handler;	       /* its name, or NULL */
	char *interpreter;     /* its interpreter, or NULL */
	bool have_interpreter; /* interp_dir/qemu-<qemu>-static exists */
};

/* The status of every architecture in the table. When binfmt_misc is not
 * mounted *mounted is false and no handler is registered (not an error). */
int plait_binfmt_status(const char *dir, const char *interp_dir, const char *host_arch,
			bool aarch32, struct plait_binfmt_status **out, size_t *n, bool *mounted,
			struct plait_error **err);
void plait_binfmt_status_free(struct plait_binfmt_status *v, size_t n);

/* Mount binfmt_misc at dir unless it is mounted already. */
int plait_binfmt_mount(const char *dir, struct plait_error **err);

/* The interpreter install registers: "<interp_dir>/qemu-<qemu>-static"; caller frees. */
char *plait_binfmt_interpreter(const char *interp_dir, const struct plait_binfmt_arch *a);
/* The line written to dir/register: ":qemu-<qemu>:M::<magic>:<mask>:<interpreter>:FP"; caller frees.
 */
char *plait_binfmt_register_line(const struct plait_binfmt_arch *a, const char *interpreter);

enum plait_binfmt_action {
	PLAIT_BINFMT_UNCHANGED,	   /* an enabled handler with F and P was there */
	PLAIT_BINFMT_ENABLED,	   /* a disabled handler with F and P was enabled */
	PLAIT_BINFMT_REGISTERED,   /* none was there; registered */
	PLAIT_BINFMT_REREGISTERED, /* handlers without F or P were removed; registered with both */
};

/* Make arch run through QEMU with the F and P flags. Refuses the host's native
 * architectures (-PLAIT_E_USAGE) and a missing interpreter (-PLAIT_E_NOT_FOUND,
 * "no /usr/bin/qemu-aarch64-static: apt-get install qemu-user-static").
 * dir must be mounted. */
int plait_binfmt_install(const char *dir, const char *interp_dir, const char *host_arch,
			 bool aarch32, const struct plait_binfmt_arch *a,
			 enum plait_binfmt_action *action, struct plait_error **err);

#endif
