/*
 * no_symbol.c - a fixture: a perfectly good shared object that exports no
 * `pexec_plugin` symbol, as any stray .so would.
 */
#include "pexec_plugin.h"

PEXEC_EXPORT int no_symbol_answer(void);

PEXEC_EXPORT int no_symbol_answer(void)
{
	return 42;
}
