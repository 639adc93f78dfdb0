/* platforms/builder.c - native or QEMU builders for a job; see builder.h. */
#include "builder.h"
#include "binfmt.h"
#include "core/platform.h"
#include "host.h"
#include "runner.h"
#include "core/banned.h"

int plait_builder_choose_in(const struct plait_host_env *h, const struct plait_platform *p,
			    struct plait_builder *out, struct plait_error **err)
{
	memset(out, 0, sizeof(*out));
	_cleanup_free_ char *ps = plait_platform_format(p);
	if (!p->os || !streq(p->os, "linux"))
		return plait_error_set(err, PLAIT_E_USAGE,
				       "no builder for %s: RUN steps need a Linux kernel; build linux/* platforms", ps);
	struct plait_platform host = { 0 };
	plait_platform_host(&host);
	const char *harch = h->host_arch ? h->host_arch : host.architecture;
	bool aarch32 = h->host_arch ? h->aarch32 : streq(harch, "arm64") && plait_binfmt_host_aarch32();
	const struct plait_binfmt_arch *a = plait_binfmt_arch_lookup(p->architecture);
	_cleanup_free_ char *interp = NULL;
	char *status_path = NULL;
	struct plait_binfmt_entry *v = NULL;
	size_t n = 0;
	int r = 0;
	if (plait_binfmt_native(harch, aarch32, p->architecture)) {
		out->name = xstrdup("native");
		plait_native_runner(&out->runner);
		goto out;
	}
	if (!a) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND, "no builder for %s: plait cannot emulate '%s' on %s",
				    ps, p->architecture, harch);
		goto out;
	}
	interp = plait_binfmt_interpreter(h->interp_dir, a);
	bool have_interp = access(interp, X_OK) == 0;
	if (!plait_binfmt_mounted(h->binfmt_dir) || plait_binfmt_read(h->binfmt_dir, &v, &n, NULL) < 0) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no builder for %s: this %s host needs QEMU emulation, and binfmt_misc is not "
				    "mounted; run %s'plait qemu install %s' as root",
				    ps, harch, have_interp ? "" : "'apt-get install qemu-user-static', then ",
				    a->arch);
		goto out;
	}
	int i = plait_binfmt_find(v, n, a);
	struct plait_buf status = PLAIT_BUF_INIT;
	struct plait_buf sp = PLAIT_BUF_INIT;
	plait_buf_addf(&sp, "%s/status", h->binfmt_dir);
	status_path = plait_buf_detach(&sp, NULL);
	bool disabled = plait_buf_read_file(&status, status_path, 64) >= 0 && status.buf &&
			startswith(status.buf, "disabled");
	plait_buf_release(&status);
	if (disabled) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no builder for %s: binfmt_misc is disabled as a whole (%s says 'disabled'); "
				    "run 'echo 1 > %s' as root",
				    ps, status_path, status_path);
	} else if (i < 0) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no builder for %s: no QEMU handler for %s is registered in %s; run %s'plait "
				    "qemu install %s' as root",
				    ps, a->arch, h->binfmt_dir,
				    have_interp ? "" : "'apt-get install qemu-user-static', then ", a->arch);
	} else if (!v[i].enabled) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no builder for %s: the QEMU handler '%s' is disabled; run 'plait qemu install "
				    "%s' as root",
				    ps, v[i].name, a->arch);
	} else if (!plait_binfmt_entry_has_flag(&v[i], 'F')) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no builder for %s: the QEMU handler '%s' lacks the F flag, so its interpreter "
				    "cannot run inside the build's chroot; run 'plait qemu install %s' as root to "
				    "re-register it",
				    ps, v[i].name, a->arch);
	} else if (!plait_binfmt_entry_has_flag(&v[i], 'P')) {
		r = plait_error_set(err, PLAIT_E_NOT_FOUND,
				    "no builder for %s: the QEMU handler '%s' lacks the P flag, so busybox and other "
				    "multi-call programs lose their name under emulation ('sleep 1' fails); run "
				    "'plait qemu install %s' as root to re-register it",
				    ps, v[i].name, a->arch);
	} else {
		out->name = xstrdup("qemu");
		out->detail = xstrdup_or_null(v[i].interpreter);
		out->emulated = true;
		plait_native_runner(&out->runner); /* the kernel starts QEMU for us */
	}
out:
	free(status_path);
	plait_binfmt_entries_free(v, n);
	plait_platform_release(&host);
	return r;
}

static int choose_local(void *ctx, const struct plait_platform *p, struct plait_builder *out,
			struct plait_error **err)
{
	(void)ctx;
	const struct plait_host_env env = { .binfmt_dir = plait_binfmt_dir(), .interp_dir = PLAIT_BINFMT_INTERP_DIR };
	return plait_builder_choose_in(&env, p, out, err);
}

void plait_local_builders(struct plait_builder_chooser *out)
{
	*out = (struct plait_builder_chooser){ .ctx = NULL, .choose = choose_local };
}
