/*
 * test_scep_tls.c - HTTPS in the transport: peer verification is on by
 * default, a CA bundle makes it pass, the host name is checked, and only
 * an explicit "insecure" turns verification off. Redirects: an https URL
 * follows a redirect to https but never one to plain http (the plain
 * server then sees no request), and a redirect loop ends. The TLS server
 * is a thread of this test on 127.0.0.1 with certificates made in memory,
 * the plain HTTP server another; the CA bundle is written to a temporary
 * file that the test removes. Messages say what is wrong: the CA bundle,
 * the host name, or a server that does not speak TLS.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "tap.h"
#include "scep.h"
#include "sa_err.h"
#include "sa_log.h"
#include "test_scep_util.h"

static int lfd, port, plain_lfd, plain_port;
static volatile int stop;
static SSL_CTX *ctx_good, *ctx_badname;
static SSL_CTX *volatile ctx_now;

/* What the TLS server answers. */
enum { R_CAPS, R_TO_HTTP, R_TO_HTTPS, R_LOOP };
static volatile int redir_mode = R_CAPS;
static volatile int plain_requests, tls_requests;

static void serve(int fd)
{
	SSL *ssl = SSL_new(ctx_now);
	char buf[8192];
	size_t have = 0;
	const char *caps = "POSTPKIOperation\nSHA-256\nAES\n";
	char resp[512], loc[256];

	SSL_set_fd(ssl, fd);
	if (SSL_accept(ssl) != 1)
		goto out;
	for (;;) {
		int r = SSL_read(ssl, buf + have, (int)(sizeof(buf) - have - 1));

		if (r <= 0)
			goto out;
		have += (size_t)r;
		buf[have] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	__atomic_add_fetch(&tls_requests, 1, __ATOMIC_SEQ_CST);
	loc[0] = '\0';
	if (redir_mode == R_TO_HTTP)
		snprintf(loc, sizeof(loc), "http://leak:Redir5ecret@127.0.0.1:%d/scep?"
			 "operation=GetCACaps", plain_port);
	else if (redir_mode == R_TO_HTTPS && strncmp(buf, "GET /old", 8) == 0)
		snprintf(loc, sizeof(loc), "https://127.0.0.1:%d/scep?operation=GetCACaps",
			 port);
	else if (redir_mode == R_LOOP)
		snprintf(loc, sizeof(loc), "https://127.0.0.1:%d/loop", port);
	if (loc[0])
		snprintf(resp, sizeof(resp), "HTTP/1.1 302 Found\r\nLocation: %s\r\n"
			 "Content-Length: 0\r\nConnection: close\r\n\r\n", loc);
	else
		snprintf(resp, sizeof(resp), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 strlen(caps), caps);
	SSL_write(ssl, resp, (int)strlen(resp));
	SSL_shutdown(ssl);
out:
	SSL_free(ssl);
	ERR_clear_error();
}

static void *server_main(void *arg)
{
	(void)arg;
	while (!stop) {
		struct pollfd pfd = { lfd, POLLIN, 0 };
		int fd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		serve(fd);
		close(fd);
	}
	return NULL;
}

/* The plain HTTP server: counts connections, answers the caps. */
static void *plain_main(void *arg)
{
	const char *resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			   "Content-Length: 29\r\nConnection: close\r\n\r\n"
			   "POSTPKIOperation\nSHA-256\nAES\n";

	(void)arg;
	while (!stop) {
		struct pollfd pfd = { plain_lfd, POLLIN, 0 };
		char buf[4096];
		int fd;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept(plain_lfd, NULL, NULL);
		if (fd < 0)
			continue;
		__atomic_add_fetch(&plain_requests, 1, __ATOMIC_SEQ_CST);
		if (recv(fd, buf, sizeof(buf), 0) > 0)
			send(fd, resp, strlen(resp), MSG_NOSIGNAL);
		close(fd);
	}
	return NULL;
}

static int listen_lo(int *port_out)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 8) != 0) {
		close(fd);
		return -1;
	}
	getsockname(fd, (struct sockaddr *)&a, &al);
	*port_out = ntohs(a.sin_port);
	return fd;
}

static SSL_CTX *server_ctx(X509 *cert, EVP_PKEY *key)
{
	SSL_CTX *c = SSL_CTX_new(TLS_server_method());

	SSL_CTX_use_certificate(c, cert);
	SSL_CTX_use_PrivateKey(c, key);
	return c;
}

static X509 *server_cert(const char *san, EVP_PKEY *key, X509 *ca, EVP_PKEY *ca_key)
{
	X509 *x = tu_cert("localhost", key, ca, ca_key, "digitalSignature,keyEncipherment", 0);

	tu_ext(x, ca, NID_subject_alt_name, san);
	X509_sign(x, ca_key, EVP_sha256());
	return x;
}

static int get_caps_at(const char *path, const char *bundle, int insecure)
{
	char url[128];
	struct scep_http_opts o = { .url = url, .ca_bundle = bundle, .insecure = insecure,
				    .timeout = 10 };
	scep_http *h = NULL;
	struct scep_buf b;
	int rc;

	snprintf(url, sizeof(url), "https://127.0.0.1:%d%s", port, path);
	if ((rc = scep_http_new(&o, &h)) != SA_OK)
		return rc;
	rc = scep_http_get(h, "GetCACaps", NULL, &b);
	if (rc == SA_OK && scep_caps_parse((char *)b.data, b.len) !=
	    (SCEP_CAP_POST | SCEP_CAP_SHA256 | SCEP_CAP_AES))
		rc = -100;
	scep_buf_clear(&b);
	scep_http_free(h);
	return rc;
}

static int get_caps(const char *bundle, int insecure)
{
	return get_caps_at("/scep", bundle, insecure);
}

/* Redirects from https: to https followed, to http refused, loops ended. */
static void test_redirects(const char *bundle)
{
	char want[64];
	int rc;

	redir_mode = R_TO_HTTP;
	plain_requests = 0;
	rc = get_caps_at("/scep", bundle, 0);
	is_int(rc, SA_EREPLY, "https redirected to http: refused (exit 6)");
	snprintf(want, sizeof(want), "https://127.0.0.1:%d/scep", port);
	ok(strstr(sa_errmsg(), want) != NULL, "the message names the https URL: %s",
	   sa_errmsg());
	snprintf(want, sizeof(want), "http://***@127.0.0.1:%d/scep", plain_port);
	ok(strstr(sa_errmsg(), want) != NULL && strstr(sa_errmsg(), "not https"),
	   "and the http URL it was sent to, without its credentials");
	ok(strstr(sa_errmsg(), "Redir5ecret") == NULL && strstr(sa_errmsg(), "leak") == NULL,
	   "no password or user of the redirect URL in the message");
	is_int(plain_requests, 0, "the plain http server got no request");
	/* with verification off too: the rule is about the scheme */
	is_int(get_caps_at("/scep", NULL, 1), SA_EREPLY, "refused with --insecure too");
	is_int(plain_requests, 0, "still no plain http request");

	redir_mode = R_TO_HTTPS;
	tls_requests = 0;
	is_int(get_caps_at("/old", bundle, 0), SA_OK, "https redirected to https: followed");
	is_int(tls_requests, 2, "two https requests (the redirect and the caps)");

	redir_mode = R_LOOP;
	tls_requests = 0;
	rc = get_caps_at("/scep", bundle, 0);
	is_int(rc, SA_ENET, "a redirect loop: an error (exit 5)");
	ok(strstr(sa_errmsg(), "redirects") != NULL, "the message says redirects: %s",
	   sa_errmsg());
	is_int(tls_requests, 6, "gave up after the first request and 5 redirects");
	redir_mode = R_CAPS;
}

/* An https URL whose server speaks plain HTTP: the handshake fails. */
static void test_not_tls(void)
{
	char u[128];
	struct scep_http_opts o = { .url = u, .timeout = 10 };
	scep_http *h = NULL;
	struct scep_buf b;

	snprintf(u, sizeof(u), "https://127.0.0.1:%d/scep", plain_port);
	if (scep_http_new(&o, &h) != SA_OK) {
		ok(0, "transport for the plain server");
		return;
	}
	is_int(scep_http_get(h, "GetCACaps", NULL, &b), SA_ENET,
	       "https URL, plain HTTP server: a network error (exit 5)");
	ok(strstr(sa_errmsg(), "does the server speak HTTPS on that port") != NULL,
	   "the message says what to check: %s", sa_errmsg());
	scep_http_free(h);
}

int main(void)
{
	EVP_PKEY *ca_key, *other_key, *srv_key;
	X509 *ca, *other, *good, *badname;
	char bundle[] = "/tmp/scep-tls-XXXXXX", wrong[] = "/tmp/scep-tls-XXXXXX";
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t al = sizeof(a);
	pthread_t t, tp;
	FILE *f;
	int fd;

	sa_log_init("test_scep_tls", SA_LOG_ERR, 0);
	signal(SIGPIPE, SIG_IGN); /* the server thread writes to aborted clients */
	scep_crypto_init();
	ca_key = tu_rsa_bits(2048);
	other_key = tu_rsa_bits(2048);
	srv_key = tu_rsa_bits(2048);
	ca = tu_cert("TLS test CA", ca_key, NULL, NULL, "keyCertSign,cRLSign", 1);
	other = tu_cert("Other CA", other_key, NULL, NULL, "keyCertSign,cRLSign", 1);
	good = server_cert("IP:127.0.0.1", srv_key, ca, ca_key);
	badname = server_cert("DNS:elsewhere.example", srv_key, ca, ca_key);
	ctx_good = server_ctx(good, srv_key);
	ctx_badname = server_ctx(badname, srv_key);
	ctx_now = ctx_good;

	fd = mkstemp(bundle);
	f = fdopen(fd, "w");
	PEM_write_X509(f, ca);
	fclose(f);
	fd = mkstemp(wrong);
	f = fdopen(fd, "w");
	PEM_write_X509(f, other);
	fclose(f);

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 8) != 0) {
		ok(0, "listen on 127.0.0.1");
		return tap_done();
	}
	getsockname(lfd, (struct sockaddr *)&a, &al);
	port = ntohs(a.sin_port);
	pthread_create(&t, NULL, server_main, NULL);
	plain_lfd = listen_lo(&plain_port);
	ok(plain_lfd >= 0, "plain HTTP listener on 127.0.0.1");
	pthread_create(&tp, NULL, plain_main, NULL);

	is_int(get_caps(bundle, 0), SA_OK, "HTTPS with the CA bundle (-C style option)");
	is_int(get_caps(NULL, 0), SA_ENET, "unknown CA refused by default");
	ok(strstr(sa_errmsg(), "CA bundle") != NULL, "message names the CA bundle: %s", sa_errmsg());
	is_int(get_caps(wrong, 0), SA_ENET, "another CA's bundle refused");
	ok(strstr(sa_errmsg(), "CA bundle") != NULL, "message names the CA bundle: %s", sa_errmsg());
	is_int(get_caps(NULL, 1), SA_OK, "explicit insecure skips verification");
	ctx_now = ctx_badname;
	is_int(get_caps(bundle, 0), SA_ENET, "certificate for another host name refused");
	ok(strstr(sa_errmsg(), "does not name the host 127.0.0.1 of the URL") != NULL &&
	   strstr(sa_errmsg(), "CA bundle") == NULL,
	   "the message says the name is wrong, not the CA bundle: %s", sa_errmsg());
	is_int(get_caps("/nonexistent/bundle.pem", 0), SA_ENET, "missing bundle file: error");
	ctx_now = ctx_good;
	test_not_tls();
	test_redirects(bundle);

	stop = 1;
	pthread_join(t, NULL);
	pthread_join(tp, NULL);
	close(lfd);
	close(plain_lfd);
	unlink(bundle);
	unlink(wrong);
	SSL_CTX_free(ctx_good);
	SSL_CTX_free(ctx_badname);
	X509_free(ca);
	X509_free(other);
	X509_free(good);
	X509_free(badname);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	EVP_PKEY_free(srv_key);
	return tap_done();
}
