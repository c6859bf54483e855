/*
 * fuzz_http.c - libFuzzer target: the HTTP reply handling of the
 * transport (agent/scep/http.c): status lines, headers, Content-Type,
 * chunked and sized bodies, redirects, the size cap, HTML error pages.
 *
 * The transport talks to a socket only, so the target runs a small HTTP
 * server on 127.0.0.1 in a thread of its own that answers every request
 * with the fuzz input as the raw response bytes and closes. The transport
 * uses it as its proxy, so a redirect to any host comes back to it too
 * (never leaves the machine) and an https URL is a CONNECT to it.
 *
 *   byte 0   flags: bit 0 POST (else GET); bit 1 https URL; bit 2 a small
 *            size cap (64 bytes, else 4096); bit 3 a GET with a message
 *   rest     the raw HTTP response
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "scep.h"
#include "sa_err.h"
#include "sa_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t *resp; /* a copy: the server may answer after the run */
static size_t resp_len;
static int port;

/* Read one request (headers, and a Content-Length body), up to 1 s. */
static void read_request(int fd)
{
	char buf[8192];
	size_t n = 0;
	ssize_t r;
	char *end, *cl;
	long body = 0;

	while (n < sizeof(buf) - 1) {
		r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0);
		if (r <= 0)
			return;
		n += (size_t)r;
		buf[n] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end == NULL)
			continue;
		cl = strcasestr(buf, "\r\nContent-Length:");
		if (cl != NULL && cl < end)
			body = strtol(cl + 17, NULL, 10);
		body -= (long)(n - (size_t)(end + 4 - buf));
		while (body > 0) {
			r = recv(fd, buf, sizeof(buf), 0);
			if (r <= 0)
				return;
			body -= r;
		}
		return;
	}
}

static void *serve(void *arg)
{
	int ls = *(int *)arg;

	for (;;) {
		struct timeval tv = { 1, 0 };
		int fd = accept(ls, NULL, NULL);
		char junk[4096];

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		read_request(fd);
		pthread_mutex_lock(&lock);
		if (resp_len > 0)
			(void)send(fd, resp, resp_len, MSG_NOSIGNAL);
		pthread_mutex_unlock(&lock);
		shutdown(fd, SHUT_WR);
		while (recv(fd, junk, sizeof(junk), 0) > 0)
			;
		close(fd);
	}
}

static void start(void)
{
	static int ls;
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	pthread_t t;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
	    listen(ls, 16) != 0 || getsockname(ls, (struct sockaddr *)&a, &al) != 0 ||
	    pthread_create(&t, NULL, serve, &ls) != 0)
		abort();
	port = ntohs(a.sin_port);
	sa_log_init("fuzz", SA_LOG_ERR - 1, 0); /* quiet */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct scep_http_opts o = { 0 };
	struct scep_buf b = { 0 };
	scep_http *h = NULL;
	char proxy[64];
	uint8_t f;
	int rc;

	if (port == 0)
		start();
	if (size < 1)
		return 0;
	f = data[0];
	pthread_mutex_lock(&lock);
	free(resp);
	resp = malloc(size);
	resp_len = resp ? size - 1 : 0;
	if (resp)
		memcpy(resp, data + 1, resp_len);
	pthread_mutex_unlock(&lock);
	snprintf(proxy, sizeof(proxy), "http://127.0.0.1:%d", port);
	o.url = f & 2 ? "https://scep.test/cgi-bin/pkiclient.exe" : "http://scep.test/scep";
	o.proxy = proxy;
	o.connect_timeout = 5;
	o.timeout = 5;
	o.max_response = f & 4 ? 64 : 4096;
	if (scep_http_new(&o, &h) != 0)
		abort();
	if (f & 1)
		rc = scep_http_post(h, "PKIOperation", (const unsigned char *)"\x30\x03\x02\x01\x00",
				    5, &b);
	else
		rc = scep_http_get(h, f & 8 ? "PKIOperation" : "GetCACaps",
				   f & 8 ? "MIIB+/=" : NULL, &b);
	if (rc == 0) {
		/* what the callers rely on */
		if (b.data == NULL || b.len > o.max_response || b.data[b.len] != '\0')
			abort();
		(void)scep_caps_parse((const char *)b.data, b.len);
	}
	scep_buf_clear(&b);
	scep_http_free(h);
	sa_err_clear();
	return 0;
}
