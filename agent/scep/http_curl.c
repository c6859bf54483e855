/*
 * http_curl.c - libcurl, loaded at run time for the transport (http.c).
 *
 * The program does not link libcurl: its tree of libraries (TLS, Kerberos,
 * LDAP, SSH, ...) would be mapped at exec in every process, the daemon's
 * scheduler too, which never makes a request (each job runs in a child).
 * The first transport a process creates loads libcurl.so.4 here, once,
 * looks up the functions http.c calls, checks the version and runs
 * curl_global_init() before the first handle exists, as curl asks.
 */
#include "http_curl.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa_err.h"
#include "sa_esc.h"

/* CURLOPT_PROTOCOLS_STR and CURLOPT_REDIR_PROTOCOLS_STR (7.85.0): without
 * them a redirect could lead to any protocol curl speaks */
#define SCEP_CURL_MIN_VERSION 0x075500
#define SCEP_CURL_MIN_TEXT "7.85.0"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static struct scep_curl_fns fns;
static int load_rc = SA_EINTERNAL;
static char load_msg[768];

/* What to do about a missing or unusable libcurl, ending every message. */
#define FIX "the HTTP transport needs " SCEP_CURL_LIB " (libcurl " \
	SCEP_CURL_MIN_TEXT " or newer): install the Debian package libcurl4"

/* dlsym() for one entry of fns; 0 if the library lacks it. */
static int sym(void *lib, const char *name, void *slot)
{
	void *p;

	dlerror();
	p = dlsym(lib, name);
	if (p == NULL)
		return 0;
	/* POSIX: a data pointer converts to a function pointer of this size */
	memcpy(slot, &p, sizeof(p));
	return 1;
}

static void load(void)
{
	static const struct {
		const char *name;
		size_t off;
	} table[] = {
#define F(member, name) { name, offsetof(struct scep_curl_fns, member) }
		F(easy_init, "curl_easy_init"),
		F(easy_setopt, "curl_easy_setopt"),
		F(easy_perform, "curl_easy_perform"),
		F(easy_getinfo, "curl_easy_getinfo"),
		F(easy_cleanup, "curl_easy_cleanup"),
		F(easy_strerror, "curl_easy_strerror"),
		F(slist_append, "curl_slist_append"),
		F(slist_free_all, "curl_slist_free_all"),
		F(url, "curl_url"),
		F(url_set, "curl_url_set"),
		F(url_get, "curl_url_get"),
		F(url_cleanup, "curl_url_cleanup"),
		F(free, "curl_free"),
#undef F
	};
	CURLcode (*global_init)(long flags) = NULL;
	curl_version_info_data *(*version_info)(CURLversion v) = NULL;
	const curl_version_info_data *vi;
	const char *file = secure_getenv("SCEP_AGENT_TEST_LIBCURL");
	char shown[256], why[300];
	void *lib;
	size_t i;
	CURLcode cc;

	if (file == NULL || *file == '\0')
		file = SCEP_CURL_LIB;
	sa_esc_str(file, shown, sizeof(shown));
	dlerror();
	lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		const char *e = dlerror();

		snprintf(load_msg, sizeof(load_msg), "cannot load %s (%s); %s", shown,
			 sa_esc_str(e ? e : "no reason given", why, sizeof(why)), FIX);
		return;
	}
	if (!sym(lib, "curl_global_init", &global_init) ||
	    !sym(lib, "curl_version_info", &version_info)) {
		snprintf(load_msg, sizeof(load_msg), "%s lacks %s: it is not libcurl, or "
			 "too old; %s", shown, global_init ? "curl_version_info" :
			 "curl_global_init", FIX);
		goto fail;
	}
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (!sym(lib, table[i].name, (char *)&fns + table[i].off)) {
			snprintf(load_msg, sizeof(load_msg), "%s lacks %s: it is not "
				 "libcurl, or too old; %s", shown, table[i].name, FIX);
			goto fail;
		}
	}
	vi = version_info(CURLVERSION_NOW);
	if (vi == NULL || vi->version_num < SCEP_CURL_MIN_VERSION) {
		snprintf(load_msg, sizeof(load_msg), "%s is libcurl %s, too old; %s",
			 shown, vi && vi->version ? sa_esc_str(vi->version, why, sizeof(why))
			 : "(unknown version)", FIX);
		goto fail;
	}
	cc = global_init(CURL_GLOBAL_DEFAULT);
	if (cc != CURLE_OK) {
		snprintf(load_msg, sizeof(load_msg), "libcurl's initialisation "
			 "(curl_global_init of %s) failed: %s", shown,
			 sa_esc_str(fns.easy_strerror(cc), why, sizeof(why)));
		goto fail;
	}
	load_rc = SA_OK;
	return;
fail:
	memset(&fns, 0, sizeof(fns));
	dlclose(lib);
}

/* Load libcurl once per process; see http_curl.h. */
int scep_curl_load(const struct scep_curl_fns **out)
{
	*out = NULL;
	if (pthread_once(&load_once, load) != 0)
		return sa_fail_noossl(SA_EINTERNAL, "cannot load %s: pthread_once "
				      "failed", SCEP_CURL_LIB);
	if (load_rc != SA_OK)
		return sa_fail_noossl(load_rc, "%s", load_msg);
	*out = &fns;
	return SA_OK;
}
