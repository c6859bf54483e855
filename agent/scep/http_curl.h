/*
 * http_curl.h - libcurl, loaded at run time (http_curl.c); private to the
 * transport (http.c). Nothing links libcurl: the first transport a process
 * creates loads libcurl.so.4, so a process that never makes a request (the
 * daemon's scheduler, `status`) never maps it and its tree of libraries.
 * curl's headers still give the types and constants.
 */
#ifndef SCEP_HTTP_CURL_H
#define SCEP_HTTP_CURL_H

#include <curl/curl.h>

/* The library file loaded (its soname); named in messages. */
#define SCEP_CURL_LIB "libcurl.so.4"

/* The libcurl functions the transport calls, with curl's own prototypes. */
struct scep_curl_fns {
	CURL *(*easy_init)(void);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	void (*easy_cleanup)(CURL *curl);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *s);
	void (*slist_free_all)(struct curl_slist *list);
	CURLU *(*url)(void);
	CURLUcode (*url_set)(CURLU *u, CURLUPart part, const char *content,
			     unsigned int flags);
	CURLUcode (*url_get)(CURLU *u, CURLUPart part, char **content,
			     unsigned int flags);
	void (*url_cleanup)(CURLU *u);
	void (*free)(void *p);
};

/*
 * Load libcurl and run curl_global_init(CURL_GLOBAL_DEFAULT), once per
 * process (pthread_once: the first caller does it, any other waits for
 * it). On success *out is the function table, valid for the life of the
 * process, and the result SA_OK. On failure (the library cannot be loaded,
 * lacks a function, is older than 7.85, or its initialisation failed)
 * nothing stays loaded, *out is NULL, and every call returns the same
 * code with the same message recorded (sa_fail): SA_EINTERNAL.
 *
 * Test hook: SCEP_AGENT_TEST_LIBCURL=PATH loads PATH instead of
 * libcurl.so.4 (read with secure_getenv; docs/architecture.md).
 */
int scep_curl_load(const struct scep_curl_fns **out);

#endif
