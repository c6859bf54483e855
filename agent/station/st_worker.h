/*
 * st_worker.h - a worker's state (one module held, one SCEP client kept
 * for every token it gets): shared by st_worker.c and st_token.c.
 */
#ifndef ST_WORKER_H
#define ST_WORKER_H

#include "station.h"

struct station_worker {
	const struct station_opts *so;
	const struct station_csv *csv;  /* the run's CSV (NULL: none) */
	p11_hold *hold;                 /* the module, loaded once */
	scep_client *client;            /* one connection for all tokens */
};

/* the module held again (a fresh C_Initialize: tokens another process
 * made since are seen; a card pulled out leaves no stale session) */
int station_worker_reload(struct station_worker *w);

#endif
