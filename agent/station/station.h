/*
 * station.h - the provisioning station: `scep-agent provision` enrolls
 * every matching token of a module side by side (docs/station.md).
 *
 * Processes: the parent (st_main.c, st_pool.c) never loads a PKCS#11
 * module. Token discovery runs in a child (st_scan.c: one scan, or a
 * watcher with --watch); each token's enrollment runs in one of --jobs
 * worker processes (st_worker.c, st_token.c), each of which loads the
 * module once and keeps it, with one SCEP client (one HTTP connection,
 * GetCACaps once) for every token it gets. Parent and children talk over
 * pipes in job_wire's record encoding (st_wire.c).
 */
#ifndef STATION_H
#define STATION_H

#include <stddef.h>
#include <time.h>

#include "agent.h"

/* Defaults (documented in scep-agent(1), PROVISION). */
#define STATION_KEY_LABEL "scep-key"   /* --key-label */
#define STATION_INIT_LABEL "token-{n}" /* --label with --init */
#define STATION_DEADLINE_S 900L        /* --deadline: one token's work */
#define STATION_WATCH_JOBS 8L          /* --jobs with --watch */
#define STATION_MAX_JOBS 256L

/* Exit status of provision (besides 4 usage, 7 no token, 128+N). */
#define STATION_EXIT_OK 0       /* every token enrolled or skipped */
#define STATION_EXIT_FAILED 1   /* some token failed */
#define STATION_EXIT_PENDING 3  /* some pending, none failed */

/* The command line of provision. */
struct station_opts {
	struct agent_opts o;       /* the usual options, as enroll's */
	const char *filter;        /* TOKEN-URI, or NULL: every token */
	const char *module;        /* o.s.pkcs11_module (borrowed) */
	const char *subject_tmpl;  /* --subject template (required) */
	const char **san_tmpl;     /* --san templates */
	size_t n_san;
	const char *csv_path;      /* --csv */
	const char *key_label;     /* --key-label */
	const char *init_label;    /* --label template for --init */
	const char *report_path;   /* --report */
	long first;                /* --first: {n} of the first token */
	long jobs;                 /* --jobs (0: the number of tokens) */
	long deadline_s;           /* --deadline: one token's bound */
	int init;                  /* --init */
	int watch;                 /* --watch */
	int resume;                /* --resume (-R) */
	int reenroll;              /* --reenroll */
	int use_key;               /* --use-key */
	int list_only;             /* --dry-run: list the tokens, do nothing */
};

/* Is name the station's command ("provision")? */
int station_is_command(const char *name);

/* `scep-agent provision ...`: the whole run; returns the exit status. */
int station_main(int argc, char **argv);

/* Parse argv (argv[1] "provision"). *help: --help was handled. */
int station_opts_parse(int argc, char **argv, struct station_opts *so,
		       int *help);
void station_opts_free(struct station_opts *so);
void station_usage(FILE *fp);

/* ---- templates and the CSV (st_tmpl.c) ---- */

/* A --csv file: a header row, rows keyed by the column token_serial. */
struct station_csv {
	char **cols;     /* header names */
	size_t n_cols;
	char ***rows;    /* rows[i][j]: column j of row i */
	size_t n_rows;
	int secret_cols; /* it has a pin or challenge column */
};
int station_csv_load(const char *path, struct station_csv *csv);
/* the row of serial, or NULL (borrowed) */
char **station_csv_row(const struct station_csv *csv, const char *serial);
/* the value of column in row, or NULL (borrowed) */
const char *station_csv_get(const struct station_csv *csv, char **row,
			    const char *column);
/* wiped (pin and challenge) and freed */
void station_csv_free(struct station_csv *csv);

/* What a template may name for one token. */
struct station_vars {
	const char *serial;
	const char *label;
	long n;
	const struct station_csv *csv;
	char **row;          /* the token's CSV row or NULL */
};
/*
 * tmpl with {token_serial} {token_label} {n} {csv:COLUMN} replaced
 * ("{{" is "{"). *out: caller frees. SA_EUSAGE naming what is missing.
 */
int station_render(const char *tmpl, const struct station_vars *v,
		   char **out);
/* Does tmpl name only known variables? (checked before any token) */
int station_tmpl_check(const char *tmpl, const struct station_csv *csv,
		       const char *what);

/* ---- the per-token work and its result ---- */

enum station_state {
	ST_OK = 0, ST_PENDING, ST_FAILED, ST_SKIPPED,
};
const char *station_state_name(enum station_state s);

/* One token to provision, as the parent hands it to a worker. */
struct station_task {
	unsigned long slot_id;
	int blank;           /* to be initialised (--init) */
	char *serial;        /* "" for a blank token */
	char *label;         /* token label; for a blank one, the new label */
	long n;              /* {n} */
	char *subject;       /* rendered */
	char **san;          /* rendered */
	size_t n_san;
	char *pin;           /* from the CSV (secret; NULL: the usual source) */
	char *challenge;     /* from the CSV (secret; NULL: the usual source) */
};
void station_task_clear(struct station_task *t);

/* What a worker reports for a token (the report's fields). */
struct station_result {
	enum station_state state;
	char *token_serial;
	char *token_label;
	char *key_uri;       /* no PIN */
	char *serial;        /* certificate serial, lowercase hex */
	char *not_after;     /* RFC 3339, UTC */
	double seconds;
	char *error;         /* NULL when none */
	long n;
	unsigned long slot_id;
};
void station_result_clear(struct station_result *r);

/* ---- wire (st_wire.c): tasks and results over pipes ---- */
int station_task_encode(const struct station_task *t, char **buf,
			size_t *len);
int station_task_decode(const char *buf, size_t len,
			struct station_task *t);
int station_result_encode(const struct station_result *r, char **buf,
			  size_t *len);
int station_result_decode(const char *buf, size_t len,
			  struct station_result *r);
/* a message being built: records added, "end=1" added by finish (which
 * hands the buffer over; on error it is wiped and freed) */
struct station_wb {
	char *p;
	size_t len;
	int err;
};
void station_wb_add(struct station_wb *b, const char *key, const char *val);
void station_wb_num(struct station_wb *b, const char *key, long long v);
int station_wb_finish(struct station_wb *b, char **buf, size_t *len);
/* The records of a message: fn for each (v: a new string fn owns) up to
 * "end=1". SA_EINTERNAL for a malformed or cut message. */
typedef int station_rec_fn(void *arg, const char *k, size_t kl, char *v);
int station_wire_each(const char *buf, size_t len, station_rec_fn *fn,
		      void *arg);
/*
 * Read one message (records up to "end=1") from fd into a growing
 * buffer: 1 a whole message in *msg, its length in *len (caller frees), 0 end of file,
 * negative on error.
 */
int station_wire_read(int fd, char **msg, size_t *len);
/* Does buf hold a whole message (its last record "end=1")? its length */
size_t station_wire_complete(const char *buf, size_t len);

/* ---- one token, in a worker (st_token.c) ---- */
struct station_worker;
int station_token_run(struct station_worker *w, const struct station_opts *so,
		      const struct station_task *t, struct station_result *r);

/* A worker process's life (st_worker.c): tasks from in, results to out;
 * never returns. */
void station_worker_main(const struct station_opts *so,
			 const struct station_csv *csv, int in, int out)
	__attribute__((noreturn));

/* ---- scan (st_scan.c): token discovery in a child ---- */
struct station_found {
	struct p11_token_desc *d;
	size_t n;
};
/* one scan in a child: the tokens (blank ones too with --init) */
int station_scan_once(const struct station_opts *so,
		      struct station_found *f);
/* the watcher child: writes a scan on fd each time slots change; never
 * returns */
void station_watch_child(const struct station_opts *so, int fd)
	__attribute__((noreturn));
/* a scan message from the watcher into f */
int station_scan_decode(const char *buf, size_t len, struct station_found *f);
void station_found_clear(struct station_found *f);

/* ---- the workers, from the parent (st_pool.c) ---- */
struct station_pool;
typedef void station_result_fn(void *arg, const struct station_result *r);
int station_pool_new(const struct station_opts *so,
		     const struct station_csv *csv, long jobs,
		     struct station_pool **out);
/* t to an idle worker (one started if fewer than jobs run): 1 given,
 * 0 every worker busy */
int station_pool_give(struct station_pool *p, const struct station_task *t);
/* the number of workers with a token in hand */
int station_pool_busy(const struct station_pool *p);
/*
 * Wait up to max_s for results (cb for each, a lost worker's token
 * included) or for extra_fd (>= 0) to be readable (*extra_ready);
 * deadlines enforced. Returns early on a signal.
 */
int station_pool_wait(struct station_pool *p, int extra_fd, double max_s,
		      int *extra_ready, station_result_fn *cb, void *arg);
/* sig (SIGTERM) to the busy workers; SIGKILL follows after a grace */
void station_pool_stop(struct station_pool *p, int sig);
/* idle workers told to end (pipe closed), busy ones killed; all reaped */
void station_pool_free(struct station_pool *p);

/* ---- output (st_out.c) ---- */
void station_out_line(const struct station_result *r);
void station_out_summary(const struct station_result *r, size_t n);
int station_report_write(const char *path, const struct station_result *r,
			 size_t n);

#endif
