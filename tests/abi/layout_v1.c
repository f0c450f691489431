/*
 * layout_v1.c - pexec_buf and pexec_error as the first published plugin
 * header (pexec_plugin_v1.h beside this file, frozen) laid them out.  Built
 * into the test binary, apart from every file that includes sdk/'s header.
 */
#include "pexec_plugin_v1.h"
#include "layout.h"

void abi_layout_v1(struct abi_layout *out)
{
	const struct abi_layout v1 = ABI_LAYOUT_OF_THIS_HEADER;

	*out = v1;
}
