/*
 * p11_pin.c - where the user PIN comes from. In order: --pin-file,
 * the environment variable named by the user, the URI's pin-source
 * (file:/path, a plain path, or env:VAR), the URI's pin-value (with a
 * warning: it shows in ps), a prompt on /dev/tty without echo. The PIN
 * is never logged; callers wipe it with OPENSSL_cleanse.
 */
#include "p11_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "sa_err.h"
#include "sa_intr.h"
#include "sa_log.h"

/*
 * PINs read in this run, by source ("file:PATH", "env:VAR", "tty:LABEL"):
 * each source is read once, so a FIFO or /dev/fd/N also serves a second
 * token opened with the same source. Wiped by p11_pin_forget() when the
 * last module is unloaded (no token is open to log in to any more).
 */
#define PIN_SOURCES 4
static struct {
	char source[4200];
	char pin[P11_PIN_MAX];
	int used;
} pin_cache[PIN_SOURCES];

void p11_pin_forget(void)
{
	OPENSSL_cleanse(pin_cache, sizeof(pin_cache));
}

static int cache_get(const char *kind, const char *arg, char *pin, size_t pinsz)
{
	int i;

	for (i = 0; i < PIN_SOURCES; i++)
		if (pin_cache[i].used &&
		    strncmp(pin_cache[i].source, kind, strlen(kind)) == 0 &&
		    strcmp(pin_cache[i].source + strlen(kind), arg) == 0 &&
		    strlen(pin_cache[i].pin) < pinsz) {
			memcpy(pin, pin_cache[i].pin, strlen(pin_cache[i].pin) + 1);
			return 1;
		}
	return 0;
}

static void cache_put(const char *kind, const char *arg, const char *pin)
{
	int i;

	if (strlen(kind) + strlen(arg) >= sizeof(pin_cache[0].source) ||
	    strlen(pin) >= sizeof(pin_cache[0].pin))
		return;
	for (i = 0; i < PIN_SOURCES; i++)
		if (!pin_cache[i].used) {
			memcpy(pin_cache[i].source, kind, strlen(kind));
			memcpy(pin_cache[i].source + strlen(kind), arg,
			       strlen(arg) + 1);
			memcpy(pin_cache[i].pin, pin, strlen(pin) + 1);
			pin_cache[i].used = 1;
			return;
		}
}

/* Strip one trailing "\n" or "\r\n". */
static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
}

static int pin_from_file_once(const char *path, char *pin, size_t pinsz)
{
	char buf[P11_PIN_MAX + 2];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	char *nl;
	int fd, rc;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return sa_fail_noossl(SA_EPIN, "cannot read the PIN file %s: %s",
				      path, strerror(errno));
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
	    (st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
		sa_warn("PIN file %s is readable by group or others (mode %03o); "
			"chmod 600 it", path, (unsigned)(st.st_mode & 0777));
	while (len < sizeof(buf) - 1) {
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	if ((nl = strchr(buf, '\n')) != NULL)
		nl[1] = '\0';
	chomp(buf);
	if (buf[0] == '\0') {
		rc = sa_fail_noossl(SA_EPIN, "the PIN file %s is empty", path);
	} else if (strlen(buf) >= pinsz) {
		rc = sa_fail_noossl(SA_EPIN, "the PIN in %s is longer than %zu "
				    "characters", path, pinsz - 1);
	} else {
		memcpy(pin, buf, strlen(buf) + 1);
		rc = 0;
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static int pin_from_env_once(const char *var, char *pin, size_t pinsz)
{
	const char *v = getenv(var);

	if (v == NULL || v[0] == '\0')
		return sa_fail_noossl(SA_EPIN, "the PIN variable %s is not set "
				      "or empty; export it or use another PIN "
				      "source", var);
	if (strlen(v) >= pinsz)
		return sa_fail_noossl(SA_EPIN, "the PIN in %s is longer than %zu "
				      "characters", var, pinsz - 1);
	memcpy(pin, v, strlen(v) + 1);
	return 0;
}

/*
 * A PIN source read once per run: from the cache (kind "file:" or "env:"
 * plus arg), else read() and cached.
 */
static int pin_once(const char *kind, const char *arg,
		    int (*read)(const char *, char *, size_t), char *pin,
		    size_t pinsz)
{
	int rc;

	if (cache_get(kind, arg, pin, pinsz))
		return 0;
	rc = read(arg, pin, pinsz);
	if (rc == 0)
		cache_put(kind, arg, pin);
	return rc;
}

/*
 * Prompt on the controlling terminal without echo: "WHAT for token
 * 'LABEL': " (what: "User PIN", "SO PIN", "New user PIN"...). 1: no
 * terminal.
 */
static int pin_from_tty_once(const char *what, const char *label, char *pin,
			     size_t pinsz)
{
	struct termios old, noecho;
	char buf[P11_PIN_MAX + 2];
	size_t len = 0;
	int fd, rc = 0, restore = 0;
	ssize_t n;
	char c;

	if (!isatty(STDIN_FILENO))
		return 1;
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 1;
	if (tcgetattr(fd, &old) == 0) {
		noecho = old;
		noecho.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
		noecho.c_lflag |= ICANON;
		if (tcsetattr(fd, TCSAFLUSH, &noecho) == 0)
			restore = 1;
	}
	dprintf(fd, "%s for token '%s': ", what, label ? label : "?");
	while (len < sizeof(buf) - 1) {
		if (sa_intr_wait_readable(fd) != 0)
			break; /* Ctrl-C: stop, with the terminal restored */
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR && sa_intr_caught())
			break;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || c == '\n' || c == '\r')
			break;
		buf[len++] = c;
	}
	buf[len] = '\0';
	c = 0;
	if (restore)
		tcsetattr(fd, TCSAFLUSH, &old);
	dprintf(fd, "\n");
	close(fd);
	if (sa_intr_caught())
		rc = sa_fail_noossl(SA_EINTR, "%s entry for token '%s' stopped "
				    "by %s", what, label ? label : "?",
				    sa_intr_name(sa_intr_caught()));
	else if (len == 0)
		rc = sa_fail_noossl(SA_EPIN, "no %s entered for token '%s'",
				    what, label ? label : "?");
	else if (len >= pinsz)
		rc = sa_fail_noossl(SA_EPIN, "the PIN entered is too long");
	else
		memcpy(pin, buf, len + 1);
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/*
 * A PIN for the token label from the terminal, asked once per run (per
 * what and label). confirm: a new PIN, typed twice.
 */
static int pin_from_tty(const char *what, int confirm, const char *label,
			char *pin, size_t pinsz)
{
	char again[P11_PIN_MAX], key[300], what2[64];
	int rc;

	snprintf(key, sizeof(key), "%s:%s", what, label ? label : "?");
	if (cache_get("tty:", key, pin, pinsz))
		return 0;
	rc = pin_from_tty_once(what, label, pin, pinsz);
	if (rc == 0 && confirm) {
		snprintf(what2, sizeof(what2), "%s again", what);
		rc = pin_from_tty_once(what2, label, again, sizeof(again));
		if (rc == 0 && strcmp(pin, again) != 0)
			rc = sa_fail_noossl(SA_EPIN, "the two %ss entered for "
					    "token '%s' differ", what,
					    label ? label : "?");
		OPENSSL_cleanse(again, sizeof(again));
		if (rc != 0)
			OPENSSL_cleanse(pin, pinsz);
	}
	if (rc == 0)
		cache_put("tty:", key, pin);
	return rc;
}

/*
 * Fill pin from the first configured source (see above). pin is cleared
 * on entry. SA_EPIN when no source gives a PIN.
 */
int p11_pin_get(const struct p11_pin_opts *po, P11KitUri *uri,
		const char *token_label, char *pin, size_t pinsz)
{
	return p11_pin_get_as(po, uri, "User PIN", 0, token_label, pin, pinsz);
}

/* See p11_int.h. */
int p11_pin_get_as(const struct p11_pin_opts *po, P11KitUri *uri,
		   const char *what, int confirm, const char *token_label,
		   char *pin, size_t pinsz)
{
	const char *src = uri ? p11_kit_uri_get_pin_source(uri) : NULL;
	const char *val = uri ? p11_kit_uri_get_pin_value(uri) : NULL;
	char *arg = NULL;
	int kind, rc;

	memset(pin, 0, pinsz);
	if (po != NULL && po->pin_file != NULL)
		return pin_once("file:", po->pin_file, pin_from_file_once, pin, pinsz);
	if (po != NULL && po->pin_env != NULL)
		return pin_once("env:", po->pin_env, pin_from_env_once, pin, pinsz);
	if (po != NULL && po->pin_value != NULL) {
		if (strlen(po->pin_value) >= pinsz)
			return sa_fail_noossl(SA_EPIN, "the configured PIN is too long");
		memcpy(pin, po->pin_value, strlen(po->pin_value) + 1);
		return 0;
	}
	if (src != NULL) {
		rc = p11_pin_source_parse(src, &kind, &arg);
		if (rc == 0)
			rc = kind == P11_PIN_ENV ?
			     pin_once("env:", arg, pin_from_env_once, pin, pinsz) :
			     pin_once("file:", arg, pin_from_file_once, pin, pinsz);
		free(arg);
		return rc;
	}
	if (val != NULL) {
		sa_warn("the PIN is given as pin-value in the pkcs11: URI: it "
			"shows in ps and in shell history; prefer "
			"pin-source=file:/path or a PIN environment variable");
		if (strlen(val) >= pinsz)
			return sa_fail_noossl(SA_EPIN, "pin-value is too long");
		memcpy(pin, val, strlen(val) + 1);
		return 0;
	}
	if (po == NULL || !po->no_prompt) {
		rc = pin_from_tty(what, confirm, token_label, pin, pinsz);
		if (rc <= 0)
			return rc;
	}
	if (strcmp(what, "User PIN") != 0)
		return sa_fail_noossl(SA_EPIN, "token '%s' needs its %s and none "
				      "was given; %s, or run on a terminal",
				      token_label ? token_label : "?", what,
				      po != NULL && po->missing_hint != NULL ?
				      po->missing_hint : "give a PIN file or "
				      "a PIN environment variable");
	return sa_fail_noossl(SA_EPIN, "token '%s' needs its user PIN and none "
			      "was given; use pin-source=file:/path in the URI, "
			      "a PIN file, a PIN environment variable, or run on "
			      "a terminal", token_label ? token_label : "?");
}
