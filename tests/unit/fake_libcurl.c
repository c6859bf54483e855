/*
 * fake_libcurl.c - a shared library that is not a usable libcurl, for
 * test_scep_curl.c (loaded through SCEP_AGENT_TEST_LIBCURL): it exports
 * the names of the functions the transport looks up, and says it is
 * libcurl 7.84.0, older than the transport accepts. Built twice: as is
 * (refused for its version), and with -DFAKE_NO_URL_GET (curl_url_get
 * missing: refused for that). Every function but curl_version_info
 * aborts: the transport must call none of them, curl_global_init
 * included, before it has checked. Not built from curl.h's prototypes
 * (the stubs take nothing); curl_version_info's reply is the start of
 * curl_version_info_data, unchanged since libcurl 7.10.
 */
#include <stdlib.h>

#define NO(name) void name(void); void name(void) { abort(); }

NO(curl_global_init)
NO(curl_easy_init)
NO(curl_easy_setopt)
NO(curl_easy_perform)
NO(curl_easy_getinfo)
NO(curl_easy_cleanup)
NO(curl_easy_strerror)
NO(curl_slist_append)
NO(curl_slist_free_all)
NO(curl_url)
NO(curl_url_set)
#ifndef FAKE_NO_URL_GET
NO(curl_url_get)
#endif
NO(curl_url_cleanup)
NO(curl_free)

/* curl_version_info_data's first fields (curl/curl.h) */
struct fake_version {
	int age;
	const char *version;
	unsigned int version_num;
	const char *host;
	int features;
};

struct fake_version *curl_version_info(int v);
struct fake_version *curl_version_info(int v)
{
	static struct fake_version d;

	d.age = v;
	d.version = "7.84.0";
	d.version_num = 0x075400;
	d.host = "fake";
	return &d;
}
