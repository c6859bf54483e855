/*
 * tpm_env.c - tpm2-pkcs11's environment, made from options: where the
 * module is, which TCTI reaches the TPM, where its store (an sqlite file
 * holding the token metadata and the TPM-wrapped keys) lives, the backend
 * and the logging. Set before the module is loaded: it reads them in
 * C_Initialize.
 */
#include "tpm_int.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "p11.h"
#include "sa_err.h"
#include "sa_log.h"

struct tpm_state tpm_state;

#ifndef P11_MODULE_DIR
#define P11_MODULE_DIR "/usr/lib/x86_64-linux-gnu/pkcs11"
#endif

/* See tpm.h. */
const char *tpm_module_find(void)
{
	static const char *const where[] = {
		P11_MODULE_DIR "/libtpm2_pkcs11.so",
		"/usr/lib/x86_64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
		"/usr/lib/aarch64-linux-gnu/pkcs11/libtpm2_pkcs11.so",
		"/usr/lib/arm-linux-gnueabihf/pkcs11/libtpm2_pkcs11.so",
		"/usr/lib/pkcs11/libtpm2_pkcs11.so",
		"/usr/lib64/pkcs11/libtpm2_pkcs11.so",
		"/usr/local/lib/pkcs11/libtpm2_pkcs11.so",
		"/usr/local/lib/libtpm2_pkcs11.so",
	};
	size_t i;

	for (i = 0; i < sizeof(where) / sizeof(where[0]); i++)
		if (access(where[i], R_OK) == 0)
			return where[i];
	return NULL;
}

/* See tpm.h. */
char *tpm_store_default(void)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	char buf[PATH_MAX];

	if (geteuid() == 0)
		return strdup("/var/lib/scep-agent/tpm2");
	if (xdg != NULL && xdg[0] == '/')
		snprintf(buf, sizeof(buf), "%s/scep-agent/tpm2", xdg);
	else if (home != NULL && home[0] == '/')
		snprintf(buf, sizeof(buf), "%s/.local/share/scep-agent/tpm2", home);
	else
		return NULL;
	return strdup(buf);
}

/* See tpm.h. */
int tpm_tcti_is_direct(const char *tcti)
{
	const char *conf = strchr(tcti, ':');

	if (strncmp(tcti, "swtpm", 5) == 0 || strncmp(tcti, "mssim", 5) == 0 ||
	    strstr(tcti, "tcti-swtpm") != NULL || strstr(tcti, "tcti-mssim") != NULL)
		return 1;
	if (strncmp(tcti, "device", 6) == 0 || strstr(tcti, "tcti-device") != NULL)
		/* the device TCTI's default is /dev/tpm0: direct */
		return conf == NULL || conf[1] == '\0' || strstr(conf, "tpmrm") == NULL;
	return 0;
}

/* mkdir -p with mode 0700 for what it makes. */
static int mkdirs(const char *path)
{
	char buf[PATH_MAX], *p;
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return sa_fail_noossl(SA_EUSAGE, "the TPM store path is too long");
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(buf, 0700) != 0 && errno != EEXIST)
			return sa_fail_noossl(SA_EIO, "cannot make the TPM store "
					      "directory %s: %s; give another with "
					      "--tpm-store (TPMStore)", buf,
					      strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
		return sa_fail_noossl(SA_EIO, "the TPM store %s is not a "
				      "directory", path);
	if (access(path, R_OK | W_OK | X_OK) != 0)
		return sa_fail_noossl(SA_EIO, "cannot use the TPM store %s: %s",
				      path, strerror(errno));
	return 0;
}

/* A device TCTI's device: there, and ours to open? */
static int check_device(const char *tcti)
{
	const char *conf = strchr(tcti, ':');
	const char *dev = conf != NULL && conf[1] != '\0' ? conf + 1 : "/dev/tpm0";
	char path[256];

	if (strncmp(tcti, "device", 6) != 0)
		return 0;
	snprintf(path, sizeof(path), "%.*s", (int)strcspn(dev, ","), dev);
	if (access(path, F_OK) != 0)
		return sa_fail_noossl(SA_EKEY, "no TPM at %s: this machine shows "
				      "no TPM device (is the TPM enabled in the "
				      "firmware, its driver tpm_crb or tpm_tis "
				      "loaded?); for a software TPM give --tcti "
				      "swtpm:host=127.0.0.1,port=2321", path);
	if (access(path, R_OK | W_OK) != 0)
		return sa_fail_noossl(SA_EKEY, "cannot open the TPM %s: %s; run "
				      "as a member of its group (usually tss: "
				      "usermod -aG tss USER) or as root", path,
				      strerror(errno));
	return 0;
}

static int set(const char *name, const char *value)
{
	if (setenv(name, value, 1) != 0)
		return sa_fail_noossl(SA_ENOMEM, "cannot set %s: %s", name,
				      strerror(errno));
	return 0;
}

/* See tpm.h. */
int tpm_setup(const struct tpm_opts *o, char **module_out)
{
	const char *tcti = o->tcti, *mod = o->module;
	char *store = NULL, *real = NULL;
	unsigned int fo = 0, fs = 0;
	int rc;

	*module_out = NULL;
	if (tcti == NULL || tcti[0] == '\0')
		tcti = getenv("TPM2_PKCS11_TCTI");
	if (tcti == NULL || tcti[0] == '\0')
		tcti = TPM_TCTI_DEFAULT;
	snprintf(tpm_state.tcti, sizeof(tpm_state.tcti), "%s", tcti);
	tpm_state.direct = tpm_tcti_is_direct(tcti);
	if (mod == NULL && (mod = tpm_module_find()) == NULL)
		return sa_fail_noossl(SA_EKEY, "tpm2-pkcs11 is not installed "
				      "(no libtpm2_pkcs11.so in %s or the usual "
				      "places): install it (Debian: apt-get "
				      "install libtpm2-pkcs11-1) or give its "
				      "path with --module", P11_MODULE_DIR);
	rc = check_device(tcti);
	if (rc < 0)
		return rc;
	if (o->store != NULL && o->store[0] != '\0')
		store = strdup(o->store);
	else if (getenv("TPM2_PKCS11_STORE") != NULL &&
		 getenv("TPM2_PKCS11_STORE")[0] != '\0')
		store = strdup(getenv("TPM2_PKCS11_STORE"));
	else if ((store = tpm_store_default()) == NULL)
		return sa_fail_noossl(SA_EUSAGE, "no place for the TPM store: "
				      "HOME is not set; give --tpm-store DIR "
				      "(TPMStore)");
	if (store == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	rc = mkdirs(store);
	if (rc < 0)
		goto out;
	/* absolute: never the directory the process happens to stand in */
	real = realpath(store, NULL);
	if (real == NULL) {
		rc = sa_fail_noossl(SA_EIO, "cannot resolve the TPM store %s: "
				    "%s", store, strerror(errno));
		goto out;
	}
	rc = set("TPM2_PKCS11_TCTI", tcti);
	if (rc == 0)
		rc = set("TPM2_PKCS11_STORE", real);
	if (rc == 0 && getenv("TPM2_PKCS11_BACKEND") == NULL)
		rc = set("TPM2_PKCS11_BACKEND", "esysdb");
	/* the TSS's errors are what tpm_diag() reads; shown with -d */
	if (rc == 0 && getenv("TSS2_LOG") == NULL)
		rc = set("TSS2_LOG", o->debug ? "all+WARNING" : "all+ERROR");
	if (rc == 0 && o->debug && getenv("TPM2_PKCS11_LOG_LEVEL") == NULL)
		rc = set("TPM2_PKCS11_LOG_LEVEL", "2");
	if (rc < 0)
		goto out;
	sa_verbose("TPM: module %s, TCTI %s (%s), store %s", mod, tcti,
		   tpm_state.direct ? "no resource manager" : "resource manager",
		   real);
	if (p11_capture_on(tpm_diag) < 0)
		sa_verbose("cannot capture the TPM module's output: it shows");
	/* a TPM holds ~3 objects; tpm2-pkcs11 keeps 2 of its own loaded */
	p11_unload_between_keys(tpm_state.direct);
	/*
	 * SCEP_AGENT_TEST_TPM_NOFLUSH (tests only): leave leftovers loaded,
	 * to show what a TPM full of them does (TPM_RC 0x902) and its message.
	 */
	rc = tpm_tcti_prepare(tcti, tpm_state.direct &&
			      getenv("SCEP_AGENT_TEST_TPM_NOFLUSH") == NULL,
			      o->debug, &tpm_state.da, &fo, &fs);
	if (rc < 0)
		goto out;
	if (fo + fs > 0)
		sa_warn("flushed %u transient object(s) and %u session(s) left "
			"loaded in the TPM by a process that ended without "
			"closing them (killed?); TCTI %s has no resource "
			"manager to do it, and the TPM holds only a few",
			fo, fs, tcti);
	*module_out = strdup(mod);
	rc = *module_out ? 0 : sa_fail_noossl(SA_ENOMEM, "out of memory");
	tpm_state.set_up = rc == 0;
out:
	free(store);
	free(real);
	return rc;
}

/* See tpm.h. */
void tpm_finish(void)
{
	unsigned int fo = 0, fs = 0;
	struct tpm_da da;
	int debug = sa_log_level() >= SA_LOG_DEBUG;

	if (!tpm_state.set_up || !tpm_state.direct ||
	    getenv("SCEP_AGENT_TEST_TPM_NOFLUSH") != NULL)
		return;
	if (tpm_tcti_prepare(tpm_state.tcti, 1, debug, &da, &fo, &fs) == 0 &&
	    fo + fs > 0)
		sa_verbose("flushed %u transient object(s) and %u session(s) "
			   "tpm2-pkcs11 left loaded", fo, fs);
}
