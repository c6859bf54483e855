/*
 * st_opts.c - provision's command line: its own options taken out, the
 * rest parsed as enroll's (agent_opts_parse) so that the usual server,
 * PIN, challenge, CA and custody options apply unchanged.
 */
#include "station.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sa_err.h"
#include "sa_log.h"

/* See station.h. */
int station_is_command(const char *name)
{
	return name != NULL && strcmp(name, "provision") == 0;
}

/* See station.h. */
void station_usage(FILE *fp)
{
	fprintf(fp,
"Usage: scep-agent provision [OPTIONS] [TOKEN-URI]\n"
"Enroll every token of --module that TOKEN-URI matches (none: all), side\n"
"by side: a key generated in each token, a certificate stored next to it.\n"
"Station options:\n"
"  --subject TMPL   subject template, e.g. /CN={token_serial}/O=Example\n"
"  --san TMPL       subjectAltName template (repeatable), e.g.\n"
"                   DNS:{csv:host}.example.com\n"
"                   variables: {token_serial} {token_label} {n} {csv:COLUMN}\n"
"  --first N        {n} of the first token (default 1), by slot order\n"
"  --csv FILE       per-token values: a header row, the column token_serial\n"
"                   keys rows; columns pin and challenge give that token's\n"
"                   PIN and challenge password (the file must be 0600)\n"
"  --key-label L    the key's label in each token (default " STATION_KEY_LABEL ")\n"
"  --use-key        enroll the key already under --key-label (no keygen)\n"
"  --reenroll       enroll tokens that already hold a certificate for the\n"
"                   subject (default: skipped)\n"
"  --init           initialise blank tokens first (--so-pin-file F or\n"
"                   --so-pin-env VAR; the user PIN from the PIN source)\n"
"  --label TMPL     the label --init gives (default " STATION_INIT_LABEL ")\n"
"  --resume, -R     continue tokens an earlier run left pending\n"
"  --watch          keep running: provision each token as it appears\n"
"  --jobs N         workers side by side (default: the number of tokens;\n"
"                   with --watch %ld)\n"
"  --deadline SECS  one token's work at most (default %ld); a worker past\n"
"                   it is killed and the token reported failed\n"
"  --report FILE    a JSON array, one object per token\n"
"  --dry-run        list the tokens and what they would get, do nothing\n"
"Usual options (as enroll): -u URL, -c FILE, -F FINGERPRINT, --module PATH,\n"
"  --pin-file/--pin-env, --challenge-file/--challenge-env, --key-type,\n"
"  -E, -S, -t/-T/-n (polling), --store-ca, --cert-label, --token-timeout,\n"
"  --timeout, -f FILE, -v, -d; see scep-agent(1).\n"
"Exit: 0 every token enrolled or skipped, 3 some pending and none failed,\n"
"  1 some failed, 4 usage, 7 no token matched.\n",
		STATION_WATCH_JOBS, STATION_DEADLINE_S);
}

/* enroll's options that take a value (so their values are not taken as
 * the TOKEN-URI) */
static int takes_value(const char *a)
{
	static const char *longs[] = {
		"--module", "--pin-env", "--pin-file", "--new-key", "--key-type",
		"--challenge-file", "--challenge-env", "--template",
		"--key-usage", "--ext-key-usage", "--ca-bundle", "--timeout",
		"--connect-timeout", "--token-timeout", "--renew-mode",
		"--cert-label", "--tcti", "--tpm-store", "--so-pin-file",
		"--so-pin-env", "--config", "--url", NULL,
	};
	size_t i;

	if (a[0] == '-' && a[1] != '-' && a[1] != '\0' && a[2] == '\0')
		return strchr("upgfcCESWiFkrKOleLtTnsw", a[1]) != NULL;
	if (strchr(a, '=') != NULL)
		return 0;
	for (i = 0; longs[i] != NULL; i++)
		if (strcmp(a, longs[i]) == 0)
			return 1;
	return 0;
}

/* enroll's options that make no sense per token */
static const char *refused(const char *a)
{
	static const char *bad[] = { "-k", "-r", "-K", "-O", "-l", "-L", "-w",
				     "-e", "--new-key", "--overwrite", NULL };
	size_t i, n;

	for (i = 0; bad[i] != NULL; i++) {
		n = strlen(bad[i]);
		if (strncmp(a, bad[i], n) == 0 &&
		    (a[n] == '\0' || (a[1] == '-' && a[n] == '=')))
			return bad[i];
	}
	return NULL;
}

static int num_arg(const char *opt, const char *v, long min, long *out)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min)
		return sa_fail_noossl(SA_EUSAGE, "provision: %s needs a whole "
				      "number of %ld or more, not \"%s\"", opt,
				      min, v);
	*out = n;
	return 0;
}

/*
 * One of the station's own options at argv[*i] ("--opt VALUE" or
 * "--opt=VALUE"): 1 taken (and *i moved past its value), 0 not ours.
 */
static int take_own(struct station_opts *so, int argc, char **argv, int *i)
{
	static const struct { const char *name; int val; } own[] = {
		{ "--subject", 1 }, { "--san", 1 }, { "--csv", 1 },
		{ "--first", 1 }, { "--jobs", 1 }, { "--key-label", 1 },
		{ "--label", 1 }, { "--report", 1 }, { "--deadline", 1 },
		{ "--init", 0 }, { "--watch", 0 }, { "--resume", 0 },
		{ "--reenroll", 0 }, { "--use-key", 0 }, { "--dry-run", 0 },
		{ "-R", 0 },
	};
	const char *a = argv[*i], *v = NULL;
	size_t k, n;

	for (k = 0; k < sizeof(own) / sizeof(own[0]); k++) {
		n = strlen(own[k].name);
		if (strncmp(a, own[k].name, n) != 0)
			continue;
		if (a[n] == '=' && own[k].val) {
			v = a + n + 1;
			break;
		}
		if (a[n] == '\0')
			break;
	}
	if (k == sizeof(own) / sizeof(own[0]))
		return 0;
	if (own[k].val && v == NULL) {
		if (*i + 1 >= argc)
			return sa_fail_noossl(SA_EUSAGE, "provision: missing "
					      "argument for %s", own[k].name);
		v = argv[++*i];
	}
	a = own[k].name;
	if (strcmp(a, "--subject") == 0) {
		so->subject_tmpl = v;
	} else if (strcmp(a, "--san") == 0) {
		const char **l = realloc(so->san_tmpl, (so->n_san + 1) *
					 sizeof(*l));

		if (l == NULL)
			return sa_fail_noossl(SA_ENOMEM, "out of memory");
		so->san_tmpl = l;
		l[so->n_san++] = v;
	} else if (strcmp(a, "--csv") == 0) {
		so->csv_path = v;
	} else if (strcmp(a, "--first") == 0) {
		return num_arg(a, v, 0, &so->first) < 0 ? SA_EUSAGE : 1;
	} else if (strcmp(a, "--jobs") == 0) {
		if (num_arg(a, v, 1, &so->jobs) < 0)
			return SA_EUSAGE;
		if (so->jobs > STATION_MAX_JOBS)
			return sa_fail_noossl(SA_EUSAGE, "provision: --jobs is "
					      "at most %ld", STATION_MAX_JOBS);
	} else if (strcmp(a, "--key-label") == 0) {
		if (*v == '\0' || strchr(v, '~') != NULL)
			return sa_fail_noossl(SA_EUSAGE, "provision: --key-label "
					      "needs a label without '~' (it "
					      "marks staged and retired keys)");
		so->key_label = v;
	} else if (strcmp(a, "--label") == 0) {
		so->init_label = v;
	} else if (strcmp(a, "--report") == 0) {
		so->report_path = v;
	} else if (strcmp(a, "--deadline") == 0) {
		return num_arg(a, v, 1, &so->deadline_s) < 0 ? SA_EUSAGE : 1;
	} else if (strcmp(a, "--init") == 0) {
		so->init = 1;
	} else if (strcmp(a, "--watch") == 0) {
		so->watch = 1;
	} else if (strcmp(a, "--resume") == 0 || strcmp(a, "-R") == 0) {
		so->resume = 1;
	} else if (strcmp(a, "--reenroll") == 0) {
		so->reenroll = 1;
	} else if (strcmp(a, "--use-key") == 0) {
		so->use_key = 1;
	} else if (strcmp(a, "--dry-run") == 0) {
		so->list_only = 1;
	}
	return 1;
}

/* the checks across options, once everything is read */
static int check(struct station_opts *so)
{
	const struct conf_settings *s = &so->o.s;

	so->module = s->pkcs11_module;
	if (so->module == NULL && so->filter == NULL)
		return sa_fail_noossl(SA_EUSAGE, "provision needs the PKCS#11 "
				      "module of the tokens: --module PATH (or "
				      "PKCS11Module, or a TOKEN-URI with "
				      "module-path=)");
	if (so->subject_tmpl == NULL)
		return sa_fail_noossl(SA_EUSAGE, "provision needs --subject "
				      "TEMPLATE, e.g. --subject "
				      "'/CN={token_serial}'");
	if (s->url == NULL && !so->list_only)
		return sa_fail_noossl(SA_EUSAGE, "provision needs the SCEP "
				      "server: -u URL");
	if (s->ca_cert_file == NULL && !so->list_only)
		return sa_fail_noossl(SA_EUSAGE, "provision needs the CA "
				      "certificate: -c FILE (written by getca, "
				      "pinned with -F)");
	if (so->init && s->so_pin_file == NULL && s->so_pin_env == NULL)
		return sa_fail_noossl(SA_EUSAGE, "provision --init needs the SO "
				      "PIN: --so-pin-file FILE or --so-pin-env "
				      "VAR (never on the command line)");
	if (!so->init && (s->so_pin_file != NULL || s->so_pin_env != NULL))
		return sa_fail_noossl(SA_EUSAGE, "provision: an SO PIN is only "
				      "used with --init");
	if (so->use_key && so->resume)
		return sa_fail_noossl(SA_EUSAGE, "provision: --use-key and "
				      "--resume do not go together (a pending "
				      "enrollment is resumed with its staged "
				      "key)");
	if (so->use_key && so->init)
		return sa_fail_noossl(SA_EUSAGE, "provision: --use-key needs a "
				      "key in the token; a token --init makes "
				      "has none");
	if (s->challenge_prompt == 1)
		return sa_fail_noossl(SA_EUSAGE, "provision: a challenge prompt "
				      "cannot serve tokens side by side: use "
				      "--challenge-file, --challenge-env or a "
				      "challenge column in --csv");
	return 0;
}

/* See station.h. */
int station_opts_parse(int argc, char **argv, struct station_opts *so,
		       int *help)
{
	char **pass = NULL;
	int npass = 0, i, rc;

	memset(so, 0, sizeof(*so));
	so->first = 1;
	so->key_label = STATION_KEY_LABEL;
	so->init_label = STATION_INIT_LABEL;
	so->deadline_s = STATION_DEADLINE_S;
	*help = 0;
	pass = calloc((size_t)argc + 1, sizeof(*pass));
	if (pass == NULL)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	pass[npass++] = argv[0];
	pass[npass++] = (char *)"enroll";
	for (i = 2; i < argc; i++) {
		const char *a = argv[i], *r;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			station_usage(stdout);
			*help = 1;
			rc = 0;
			goto out;
		}
		rc = take_own(so, argc, argv, &i);
		if (rc < 0)
			goto out;
		if (rc == 1)
			continue;
		if ((r = refused(a)) != NULL) {
			rc = sa_fail_noossl(SA_EUSAGE, "provision: %s does not "
					    "apply: each token gets a key under "
					    "--key-label and its certificate is "
					    "stored in the token", r);
			goto out;
		}
		if (strcmp(a, "--") == 0 || (a[0] != '-' && p11_is_uri(a))) {
			if (strcmp(a, "--") == 0 && ++i >= argc)
				break;
			if (so->filter != NULL || !p11_is_uri(argv[i])) {
				rc = sa_fail_noossl(SA_EUSAGE, "provision: "
						    "unexpected argument \"%s\" "
						    "(one TOKEN-URI, pkcs11:...)",
						    argv[i]);
				goto out;
			}
			so->filter = argv[i];
			continue;
		}
		pass[npass++] = argv[i];
		if (takes_value(a) && i + 1 < argc)
			pass[npass++] = argv[++i];
	}
	rc = agent_opts_parse(npass, pass, &so->o, help);
	if (rc < 0 || *help)
		goto out;
	if (so->resume)
		so->o.s.resume = 1;
	rc = check(so);
out:
	free(pass);
	return rc;
}

/* See station.h. */
void station_opts_free(struct station_opts *so)
{
	agent_opts_free(&so->o);
	free(so->san_tmpl);
	memset(so, 0, sizeof(*so));
}
