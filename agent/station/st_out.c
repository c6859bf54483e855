/*
 * st_out.c - provision's output: one line per token on stdout as it
 * finishes, a summary table at the end, and the --report JSON array
 * (written to a temporary file, fsync'ed and renamed).
 */
#include "station.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa_err.h"

static const char *or_dash(const char *s)
{
	return s != NULL && *s != '\0' ? s : "-";
}

/* See station.h. */
void station_out_line(const struct station_result *r)
{
	printf("%-7s token %s (%s) n=%ld", station_state_name(r->state),
	       or_dash(r->token_serial), or_dash(r->token_label), r->n);
	if (r->serial != NULL)
		printf(" cert %s until %s", r->serial, or_dash(r->not_after));
	printf(" %.2fs", r->seconds);
	if (r->error != NULL)
		printf(": %s", r->error);
	putchar('\n');
	fflush(stdout);
}

/* See station.h. */
void station_out_summary(const struct station_result *r, size_t n)
{
	size_t i, count[4] = { 0, 0, 0, 0 };

	printf("\n%-7s %-18s %-16s %-34s %-20s %8s\n", "STATE", "TOKEN SERIAL",
	       "LABEL", "CERT SERIAL", "NOT AFTER", "SECONDS");
	for (i = 0; i < n; i++) {
		printf("%-7s %-18s %-16s %-34s %-20s %8.2f\n",
		       station_state_name(r[i].state), or_dash(r[i].token_serial),
		       or_dash(r[i].token_label), or_dash(r[i].serial),
		       or_dash(r[i].not_after), r[i].seconds);
		if (r[i].state <= ST_SKIPPED)
			count[r[i].state]++;
	}
	printf("%zu token(s): %zu ok, %zu skipped, %zu pending, %zu failed\n",
	       n, count[ST_OK], count[ST_SKIPPED], count[ST_PENDING],
	       count[ST_FAILED]);
	fflush(stdout);
}

static void json_str(FILE *fp, const char *s)
{
	if (s == NULL) {
		fputs("null", fp);
		return;
	}
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(fp, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(fp, "\\u%04x", c);
		else
			fputc(c, fp);
	}
	fputc('"', fp);
}

/* See station.h. */
int station_report_write(const char *path, const struct station_result *r,
			 size_t n)
{
	char *tmp = NULL, *dcopy = NULL;
	FILE *fp = NULL;
	size_t i;
	int fd = -1, rc;

	if (asprintf(&tmp, "%s.tmpXXXXXX", path) < 0)
		return sa_fail_noossl(SA_ENOMEM, "out of memory");
	fd = mkstemp(tmp);
	if (fd < 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot write the report %s: %s",
				    path, strerror(errno));
		goto out;
	}
	fp = fdopen(fd, "w");
	if (fp == NULL) {
		rc = sa_fail_noossl(SA_EIO, "cannot write the report %s: %s",
				    path, strerror(errno));
		goto out;
	}
	fd = -1;
	fputs("[", fp);
	for (i = 0; i < n; i++) {
		fputs(i ? ",\n  {" : "\n  {", fp);
		fputs("\"token_serial\": ", fp);
		json_str(fp, r[i].token_serial);
		fputs(", \"token_label\": ", fp);
		json_str(fp, r[i].token_label);
		fputs(", \"key_uri\": ", fp);
		json_str(fp, r[i].key_uri);
		fputs(", \"serial\": ", fp);
		json_str(fp, r[i].serial);
		fputs(", \"not_after\": ", fp);
		json_str(fp, r[i].not_after);
		fprintf(fp, ", \"seconds\": %.3f, \"state\": ", r[i].seconds);
		json_str(fp, station_state_name(r[i].state));
		fputs(", \"error\": ", fp);
		json_str(fp, r[i].error);
		fputs("}", fp);
	}
	fputs(n ? "\n]\n" : "]\n", fp);
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0 || ferror(fp)) {
		rc = sa_fail_noossl(SA_EIO, "cannot write the report %s: %s",
				    path, strerror(errno));
		goto out;
	}
	if (fclose(fp) != 0) {
		fp = NULL;
		rc = sa_fail_noossl(SA_EIO, "cannot write the report %s: %s",
				    path, strerror(errno));
		goto out;
	}
	fp = NULL;
	if (rename(tmp, path) != 0) {
		rc = sa_fail_noossl(SA_EIO, "cannot write the report %s: %s",
				    path, strerror(errno));
		goto out;
	}
	free(tmp);
	tmp = NULL;
	dcopy = strdup(path);
	if (dcopy != NULL) {
		int dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
	}
	rc = 0;
out:
	if (fp != NULL)
		fclose(fp);
	if (fd >= 0)
		close(fd);
	if (tmp != NULL)
		unlink(tmp);
	free(tmp);
	free(dcopy);
	return rc;
}
