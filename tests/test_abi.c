/*
 * test_abi.c - the plugin ABI is stable: a plugin built against the first
 * published header (tests/abi/pexec_plugin_v1.h, frozen) loads and runs in
 * this pexec, every hook of that first layout included.
 *
 * The fixture, tests/plugins/abi_v1.c, has the shorter descriptor of ABI 1's
 * first release; members appended since must read as absent (NULL), never as
 * whatever lies past the plugin's descriptor.  What plugins compile in
 * without a size to tell pexec (pexec_buf's layout, which the inline helpers
 * use, and PEXEC_ERROR_MAX) must be exactly as that header had it.  When
 * this test fails, a change broke plugins already built: bump
 * PEXEC_ABI_VERSION instead, or undo it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "abi/layout.h"
#include "helpers.h"
#include "pexec.h"

/* Where ABI 1's first descriptor ended: after free_value.  Only ever true of
 * ABI 1, whatever is appended to the descriptor later. */
#define V1_DESCRIPTOR_SIZE (offsetof(pexec_descriptor, free_value) + sizeof(void (*)(void)))

TestSuite(abi, .timeout = 120);

Test(abi, v1_descriptor_loads_with_later_members_absent)
{
	static const unsigned char zeros[sizeof(pexec_descriptor)];
	pexec_loaded_plugin *p = NULL;
	pexec_error err = { { 0 } };
	const pexec_descriptor *d;

	cr_assert_eq(pexec_plugin_load(FIX("abi_v1"), NULL, &p, &err), PEXEC_OK, "%s", err.msg);
	d = pexec_plugin_descriptor(p);
	cr_expect_eq(d->abi_version, 1);
	cr_expect_eq(d->struct_size, V1_DESCRIPTOR_SIZE,
	             "abi_v1.so was not built against the frozen header: %u bytes, want %zu",
	             d->struct_size, (size_t)V1_DESCRIPTOR_SIZE);
	cr_expect_str_eq(d->name, "abi_v1");
	cr_expect(d->init && d->fini && d->deserialize && d->map && d->serialize && d->free_value);
	cr_expect_eq(memcmp((const char *)d + V1_DESCRIPTOR_SIZE, zeros,
	                    sizeof(pexec_descriptor) - V1_DESCRIPTOR_SIZE), 0,
	             "members appended after ABI 1's first layout must read as NULL");
	pexec_plugin_free(p);
}

/* Every hook runs: init (with and without config), deserialize (and its
 * failure), map (new value and pass-through), serialize, free_value, fini;
 * in a pool and in --serial. */
Test(abi, v1_plugin_runs_in_this_pexec)
{
	static const char in[] = "[1, 2.5, \"x\", -4]";
	const char *modes[] = { "-j2", "--serial" };
	struct proc r;

	for (size_t i = 0; i < COUNT(modes); i++) {
		run(&r, in, "--plugin", FIX("abi_v1"), modes[i], "--config", "{\"add\": 10}", NULL);
		expect_exit(&r, 1);
		cr_expect_str_eq(r.out, "[\n11,\n12.5,\nnull,\n6\n]\n", "%s", r.cmd);
		cr_expect(strstr(r.err, "item 2 failed in deserialize: abi_v1: not a number"),
		          "%s: stderr: %s", r.cmd, r.err);
		proc_release(&r);

		run(&r, "[1, 2.5, -4]", "--plugin", FIX("abi_v1"), modes[i], NULL);
		expect_exit(&r, 0);
		cr_expect_str_eq(r.out, "[\n1,\n2.5,\n-4\n]\n", "%s: stderr: %s", r.cmd, r.err);
		proc_release(&r);
	}

	run(&r, "[1]", "--plugin", FIX("abi_v1"), "--config", "{\"add\": \"x\"}", NULL);
	expect_exit(&r, 2);
	cr_expect(strstr(r.err, "abi_v1: config \"add\" must be a number"), "stderr: %s", r.err);
	proc_release(&r);
}

/* The inline pexec_buf_* helpers and pexec_error_set are compiled into every
 * plugin: a plugin built against the first header writes pexec_buf's members
 * at its offsets, and up to its PEXEC_ERROR_MAX bytes of message. */
Test(abi, pexec_buf_and_pexec_error_are_as_abi_1_first_had_them)
{
	const struct abi_layout now = ABI_LAYOUT_OF_THIS_HEADER;
	struct abi_layout v1;

	abi_layout_v1(&v1);
	cr_expect_eq(now.error_max, v1.error_max, "PEXEC_ERROR_MAX: %zu, ABI 1 has %zu",
	             now.error_max, v1.error_max);
	cr_expect_eq(now.error_size, v1.error_size);
	cr_expect_eq(now.buf_size, v1.buf_size, "sizeof(pexec_buf): %zu, ABI 1 has %zu",
	             now.buf_size, v1.buf_size);
	cr_expect_eq(now.buf_data, v1.buf_data);
	cr_expect_eq(now.buf_len, v1.buf_len);
	cr_expect_eq(now.buf_cap, v1.buf_cap);
	cr_expect_eq(now.buf_grow, v1.buf_grow);
	cr_expect_eq(now.buf_priv, v1.buf_priv);
}

Test(abi, v1_plugin_has_a_manifest)
{
	struct proc r;

	run(&r, NULL, "info", FIX("abi_v1"), NULL);
	expect_exit(&r, 0);
	cr_expect(parses(r.out), "not one JSON value: %s", r.out);
	cr_expect(strstr(r.out, "\"abi_v1\""), "%s", r.out);
	proc_release(&r);
}
