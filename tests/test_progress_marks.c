/*
 * test_progress_marks.c - the bytes of input whose items are done
 * (core/lib/job/progress.c), from the marks a job notes at each tick: exact
 * at a mark, even between two, bounded in memory however many ticks go by.
 */
#include <criterion/criterion.h>

#include "job/progress.h"

TestSuite(progress_marks);

Test(progress_marks, exact_at_marks_and_even_between)
{
	struct pexec__marks m;

	pexec__marks_start(&m, 1);             /* the '[' */
	cr_expect_eq(pexec__marks_done(&m, 0, 0, 1), 1);
	pexec__marks_add(&m, 10, 101);         /* 10 items of 10 bytes */
	pexec__marks_add(&m, 20, 301);         /* 10 of 20 */
	cr_expect_eq(pexec__marks_done(&m, 0, 30, 601), 1);
	cr_expect_eq(pexec__marks_done(&m, 5, 30, 601), 51);
	cr_expect_eq(pexec__marks_done(&m, 10, 30, 601), 101);
	cr_expect_eq(pexec__marks_done(&m, 15, 30, 601), 201);
	/* Past the last mark: toward what is read now. */
	cr_expect_eq(pexec__marks_done(&m, 25, 30, 601), 451);
	cr_expect_eq(pexec__marks_done(&m, 30, 30, 601), 601);
}

Test(progress_marks, a_resumed_run_starts_ahead)
{
	struct pexec__marks m;

	pexec__marks_start(&m, 5000);
	pexec__marks_add(&m, 100, 6000);
	cr_expect_eq(pexec__marks_done(&m, 0, 100, 6000), 5000);
	cr_expect_eq(pexec__marks_done(&m, 50, 100, 6000), 5500);
}

Test(progress_marks, never_goes_back_and_stays_small)
{
	struct pexec__marks m;
	uint64_t last = 0;

	pexec__marks_start(&m, 0);
	/* A million ticks, the done count far behind the reading. */
	for (uint64_t t = 1; t <= 1000000; t++) {
		uint64_t done = t / 3, got;

		pexec__marks_add(&m, t * 10, t * 100);
		got = pexec__marks_done(&m, done, t * 10, t * 100);
		cr_assert_geq(got, last, "tick %llu", (unsigned long long)t);
		cr_assert_leq(got, t * 100);
		cr_assert_leq(m.n, PEXEC__MARKS);
		last = got;
	}
	/* Coarser marks, but still about 10 bytes an item. */
	cr_expect(last >= 3333330 * 0.9 && last <= 3333330 * 1.1, "%llu",
	          (unsigned long long)last);
	/* Nothing read since the last mark: no new one. */
	{
		unsigned n = m.n;
		pexec__marks_add(&m, 10000000, 100000000);
		cr_expect_eq(m.n, n);
	}
}
