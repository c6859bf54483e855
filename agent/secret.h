/*
 * secret.h - reading a secret (the challenge password) from a file, an
 * environment variable, or a no-echo prompt on the terminal. Never from
 * the command line. Secrets are never logged; free them with
 * secret_free(), which wipes them.
 */
#ifndef SECRET_H
#define SECRET_H

/*
 * The secret from the first source given: file (its first line), env (the
 * variable's value), prompt (ask "what: " on /dev/tty without echo).
 * *out NULL when no source is given. SA_EUSAGE / SA_EIO with a sentence.
 * Each source is read once per run (so a FIFO or /dev/fd/N works): a
 * copy is kept until secret_forget() - call it once the secret is no
 * longer needed; the program's end wipes it at the latest. *out is a new
 * copy each time (secret_free() it).
 */
int secret_read(const char *file, const char *env, int prompt,
		const char *what, char **out);

/* Wipe and drop every secret kept by secret_read(). */
void secret_forget(void);

/* Wipe and free. NULL ok. */
void secret_free(char *s);

#endif
