/*
 * test_landing.c - which prefix of the placed chunks has landed (job/
 * landing.h): chunks land in any order, the prefix moves only past chunks
 * that all have, and its sums are those of exactly that prefix.
 */
#include <criterion/criterion.h>

#include "job/landing.h"

TestSuite(landing);

/* Chunk k (from 0) has k + 1 items, hash 100 + k, and leaves the writer at
 * 10 * (k + 1) results and 1000 * (k + 1) bytes past the start's. */
static void place_n(struct pexec__landing *l, int n, uint64_t *tickets)
{
	for (int k = 0; k < n; k++)
		cr_assert_eq(pexec__landing_place(l, (uint64_t)k + 1, 100 + (uint64_t)k,
		                                  5 + 10 * ((uint64_t)k + 1), 7 + 1000 * ((uint64_t)k + 1),
		                                  &tickets[k]), 0);
}

Test(landing, the_prefix_moves_only_past_chunks_that_all_landed)
{
	struct pexec__landing l;
	uint64_t t[4];

	pexec__landing_init(&l, (struct pexec__landing_sums){ 3, 9, 5, 7 });
	place_n(&l, 4, t);
	cr_expect_eq(pexec__landing_landed(&l, t[2]), 0);
	cr_expect_eq(pexec__landing_landed(&l, t[1]), 0);
	cr_expect_eq(l.sums.items, 3, "nothing before the first chunk landed");
	cr_expect_eq(pexec__landing_landed(&l, t[0]), 1);
	/* Chunks 0, 1, 2: 1 + 2 + 3 items on top of the start's 3. */
	cr_expect_eq(l.sums.items, 9);
	cr_expect_eq(l.sums.hash, 9 + 100 + 101 + 102);
	cr_expect_eq(l.sums.count, 35);
	cr_expect_eq(l.sums.bytes, 3007);
	cr_expect_eq(pexec__landing_landed(&l, t[3]), 1);
	cr_expect_eq(l.sums.items, 13);
	cr_expect_eq(l.sums.bytes, 4007);
	pexec__landing_release(&l);
}

Test(landing, a_ticket_lands_once)
{
	struct pexec__landing l;
	uint64_t t[2];

	pexec__landing_init(&l, (struct pexec__landing_sums){ 0 });
	place_n(&l, 2, t);
	cr_expect_eq(pexec__landing_landed(&l, t[1]), 0);
	cr_expect_eq(pexec__landing_landed(&l, t[1]), -1);
	cr_expect_eq(pexec__landing_landed(&l, t[0]), 1);
	cr_expect_eq(pexec__landing_landed(&l, t[0]), -1, "gone from the queue");
	cr_expect_eq(pexec__landing_landed(&l, 99), -1, "never placed");
	pexec__landing_release(&l);
}

/* Many chunks, landing in a scrambled order, through the queue's growth and
 * compaction: the prefix always equals the longest landed run. */
Test(landing, many_chunks_in_any_order)
{
	enum { N = 5000 };
	static uint64_t t[N];
	static int landed[N];
	struct pexec__landing l;
	uint64_t prefix = 0;

	pexec__landing_init(&l, (struct pexec__landing_sums){ 0 });
	for (int round = 0; round < 2; round++) {
		for (int k = 0; k < N / 2; k++)
			cr_assert_eq(pexec__landing_place(&l, 1, (uint64_t)(round * N / 2 + k), 0, 0,
			                                  &t[round * N / 2 + k]), 0);
		for (int i = 0; i < N / 2; i++) {
			int k = round * N / 2 + (int)(((unsigned)i * 7919u) % (N / 2));
			cr_assert_geq(pexec__landing_landed(&l, t[k]), 0);
			landed[k] = 1;
			while (prefix < N && landed[prefix])
				prefix++;
			cr_assert_eq(l.sums.items, prefix, "after chunk %d", k);
		}
	}
	cr_expect_eq(l.sums.items, N);
	cr_expect_eq(l.sums.hash, (uint64_t)N * (N - 1) / 2);
	pexec__landing_release(&l);
}
