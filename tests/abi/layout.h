/*
 * layout.h - the layout of what plugin ABI 1 freezes besides the descriptor
 * (pexec_buf and pexec_error), as numbers: layout_v1.c fills it from the
 * first published header, test_abi.c from today's, and they must be equal.
 */
#ifndef PEXEC_TEST_ABI_LAYOUT_H
#define PEXEC_TEST_ABI_LAYOUT_H

#include <stddef.h>

struct abi_layout {
	size_t error_max;       /* PEXEC_ERROR_MAX */
	size_t error_size;      /* sizeof(pexec_error) */
	size_t buf_size;        /* sizeof(pexec_buf), and each member's offset */
	size_t buf_data, buf_len, buf_cap, buf_grow, buf_priv;
};

/* Expands in a file that included one pexec_plugin.h or the other. */
#define ABI_LAYOUT_OF_THIS_HEADER                                                     \
	{ PEXEC_ERROR_MAX, sizeof(pexec_error), sizeof(pexec_buf),                       \
	  offsetof(pexec_buf, data), offsetof(pexec_buf, len), offsetof(pexec_buf, cap), \
	  offsetof(pexec_buf, grow), offsetof(pexec_buf, priv) }

/* The layout of tests/abi/pexec_plugin_v1.h. */
void abi_layout_v1(struct abi_layout *out);

#endif
