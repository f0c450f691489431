/*
 * loader.h - a loaded plugin's setup and teardown hooks (pexec_plugin.h),
 * which run once in the process that forks the workers, before the fork and
 * after the last worker has ended.  For the places that start a run:
 * pexec_run(), the pexec-mpi pool server and coordinator, `pexec check`.
 */
#ifndef PEXEC_LOADER_H
#define PEXEC_LOADER_H

#include "pexec.h"

/* Calls the plugin's setup hook, if it has one, with `config` (JSON text or
 * NULL) parsed.  Calls nest: only the outermost pair reaches the plugin, so a
 * caller that sets up for its own init (pexec-mpi's server, folding) may
 * then call pexec_run(), which sets up too.  Returns PEXEC_OK, or a code
 * with `err` filled ("plugin 'x' setup failed: ..."); after a failure there
 * is no teardown to call. */
pexec_code pexec__plugin_setup(const pexec_loaded *plugin, const char *config,
                               pexec_error *err);
/* Ends what pexec__plugin_setup began: the outermost call runs the plugin's
 * teardown hook. */
void pexec__plugin_teardown(const pexec_loaded *plugin);

#endif
