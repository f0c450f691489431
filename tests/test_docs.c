/*
 * test_docs.c - what the documentation says against what pexec does: the
 * options that `pexec --help`, the README and pexec(1) name, the version the
 * man pages and the changelog carry, the plugins the man page lists, and the
 * messages the plugin guide shows.  A doc that drifts from the binary fails
 * here, not in a user's hands.
 */
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "helpers.h"
#include "pexec.h"

TestSuite(docs, .init = scratch_make, .fini = scratch_remove);

static char *source_file(const char *rel)
{
	char path[1024];
	char *text;

	snprintf(path, sizeof(path), "%s/%s", PEXEC_SRC_DIR, rel);
	text = read_file(path, &(size_t){ 0 });
	cr_assert_not_null(text, "cannot read %s", path);
	return text;
}

/* Every "--name" in `text` (with `dash` the way the text writes a '-':
 * "-" or the man page's "\-"), appended to `names` as " name " entries. */
static void long_options(const char *text, const char *dash, char **names, size_t *len)
{
	size_t d = strlen(dash);

	for (const char *p = text; (p = strstr(p, dash)); p += d) {
		const char *q = p + d, *start;
		char name[80];
		size_t n = 0;

		if (strncmp(q, dash, d) || (p > text && (isalnum((unsigned char)p[-1]) ||
		                                         p[-1] == '-')))
			continue;
		start = q += d;
		while (n + 1 < sizeof(name) &&
		       (islower((unsigned char)*q) || isdigit((unsigned char)*q) ||
		        (d == 1 ? *q == '-' : !strncmp(q, dash, d)))) {
			name[n++] = '-' == *q || *q == '\\' ? '-' : *q;
			q += *q == '\\' ? d : 1;
		}
		name[n] = '\0';
		if (q == start || !islower((unsigned char)*start))
			continue;
		char entry[96];
		snprintf(entry, sizeof(entry), " %s ", name);
		if (!*names || !strstr(*names, entry))
			append(names, len, entry + (*len ? 1 : 0), strlen(entry) - (*len ? 1 : 0));
	}
}

static char *help_options(void)
{
	struct proc r;
	char *names = NULL;
	size_t len = 0;

	run(&r, NULL, "--help", NULL);
	expect_exit(&r, 0);
	long_options(r.out, "-", &names, &len);
	proc_release(&r);
	cr_assert_not_null(names, "--help names no option");
	return names;
}

/* The rows of the README's option table (lines opening "| `-"). */
static char *readme_table_options(const char *readme)
{
	char *names = NULL, *rows = NULL;
	size_t len = 0, rows_len = 0;

	for (const char *p = readme; (p = strstr(p, "\n| `-")); p++) {
		const char *end = strchr(p + 1, '\n');
		const char *cell = strchr(p + 3, '|');

		if (!end || !cell || cell > end)
			continue;
		append(&rows, &rows_len, p, (size_t)(cell - p));
	}
	cr_assert_not_null(rows, "the README has no option table");
	long_options(rows, "-", &names, &len);
	free(rows);
	return names;
}

/* Each " name " entry of `names` must be in `set`. */
static void expect_all_in(const char *names, const char *set, const char *what)
{
	char name[96];

	for (const char *p = names; *p;) {
		size_t n = strcspn(p + 1, " ");

		snprintf(name, sizeof(name), " %.*s ", (int)n, p + 1);
		cr_expect_not_null(strstr(set, name), "--%.*s is not in %s", (int)n, p + 1, what);
		p += n + 1;
		if (!strcmp(p, " "))
			break;
	}
}

Test(docs, help_readme_and_man_page_name_the_same_options)
{
	char *help = help_options(), *readme = source_file("README.md");
	char *man = source_file("docs/pexec.1");
	char *in_readme = NULL, *in_man = NULL, *table;
	size_t len = 0, man_len = 0;

	long_options(readme, "-", &in_readme, &len);
	long_options(man, "\\-", &in_man, &man_len);
	expect_all_in(help, in_readme, "README.md");
	expect_all_in(help, in_man, "docs/pexec.1");
	table = readme_table_options(readme);
	expect_all_in(table, help, "pexec --help");
	free(table);
	free(help);
	free(readme);
	free(man);
	free(in_readme);
	free(in_man);
}

Test(docs, man_pages_and_changelog_carry_the_version)
{
	static const char *const pages[] = { "docs/pexec.1", "docs/pexec-plugin.7" };
	char *log = source_file("CHANGELOG.md");
	struct proc r;

	for (size_t i = 0; i < COUNT(pages); i++) {
		char *man = source_file(pages[i]), *th = strstr(man, "\n.TH ");

		cr_assert_not_null(th, "%s: no .TH line", pages[i]);
		*strchr(th + 1, '\n') = '\0';
		cr_expect_not_null(strstr(th, "\"pexec " PEXEC_VERSION "\""), "%s: %s", pages[i],
		                   th + 1);
		free(man);
	}
	cr_expect_not_null(strstr(log, "\n## " PEXEC_VERSION "\n"),
	                   "CHANGELOG.md has no section for " PEXEC_VERSION);
	run(&r, NULL, "--version", NULL);
	expect_exit(&r, 0);
	cr_expect_str_eq(r.out, "pexec " PEXEC_VERSION " (plugin ABI 1)\n");
	proc_release(&r);
	free(log);
}

/* A font escape without its backslash ("\fI" written as a form feed and
 * "I") shows as a stray capital: `-o IFILEP`. */
Test(docs, man_pages_have_no_broken_font_escapes)
{
	static const char *const pages[] = { "docs/pexec.1", "docs/pexec-plugin.7" };

	for (size_t i = 0; i < COUNT(pages); i++) {
		char *man = source_file(pages[i]);

		for (const char *p = man; *p; p++)
			cr_expect(*p == '\n' || *p == '\t' || (unsigned char)*p >= 0x20,
			          "%s: control byte 0x%02x at byte %td", pages[i], (unsigned char)*p,
			          p - man);
		for (const char *p = man; (p = strstr(p, "\\f")); p += 2)
			cr_expect(strchr("IBRP(", p[2]) != NULL, "%s: unknown font escape '\\f%c'",
			          pages[i], p[2]);
		free(man);
	}
}

/* Whether `man` sets `word` in bold on a line of its own (".B word" or
 * ".BR word ,"). */
static int bold_word(const char *man, const char *word)
{
	char b[160], br[160];

	snprintf(b, sizeof(b), "\n.B %s\n", word);
	snprintf(br, sizeof(br), "\n.BR %s ", word);
	return strstr(man, b) || strstr(man, br);
}

Test(docs, man_page_lists_every_shipped_plugin)
{
	char *man = source_file("docs/pexec.1");
	char *list = strstr(man, "where the shipped plugins"), *end;
	DIR *d = opendir(PEXEC_TEST_BUILD "/plugins");
	struct dirent *e;
	size_t n = 0;

	cr_assert_not_null(list, "pexec.1 lists no shipped plugins");
	end = strstr(list, "are installed");
	cr_assert_not_null(end);
	*end = '\0';
	list[-1] = '\n';
	cr_assert_not_null(d);
	while ((e = readdir(d))) {
		size_t len = strlen(e->d_name);
		char name[128];

		if (len < 4 || len > 100 || strcmp(e->d_name + len - 3, ".so"))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 3), e->d_name);
		cr_expect(bold_word(list - 1, name), "pexec.1's plugin list misses %s", name);
		n++;
	}
	closedir(d);
	cr_expect_geq(n, 4);
	free(man);
}

/* Each run of digits (a pid, an index) as one '#', so that two runs of the
 * same line compare. */
static void mask_digits(char *s)
{
	char *o = s;
	int in_digits = 0;

	for (; *s; s++) {
		int digit = isdigit((unsigned char)*s) != 0;

		if (!digit || !in_digits)
			*o++ = digit ? '#' : *s;
		in_digits = digit;
	}
	*o = '\0';
}

/* The first line of `text` that opens with `start` and holds `has`
 * (malloc'd), or NULL. */
static char *line_with(const char *text, const char *start, const char *has)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		size_t n = strcspn(p, "\n");
		char *line;

		if (strncmp(p, start, strlen(start)))
			continue;
		line = strndup(p, n);
		cr_assert_not_null(line);
		if (strstr(line, has))
			return line;
		free(line);
	}
	return NULL;
}

Test(docs, guide_shows_the_crash_line_pexec_prints)
{
	char *guide = source_file("sdk/GUIDE.md"), *shown, *got;
	struct proc r;

	shown = line_with(guide, "pexec: item ", "killed by");
	cr_assert_not_null(shown, "the guide shows no item whose worker was killed");
	run(&r, "[1, {\"fault\": \"abort\", \"stage\": \"map\"}]", "-p", FIX("faults"), "-j", "1",
	    NULL);
	expect_exit(&r, 1);
	got = line_with(r.err, "pexec: item ", "");
	cr_assert_not_null(got, "%s", r.err);
	mask_digits(got);
	mask_digits(shown);
	/* Under the sanitizers the abort may be caught otherwise. */
	if (!SANITIZED)
		cr_expect_str_eq(shown, got, "the guide shows \"%s\", pexec prints \"%s\"", shown,
		                 got);
	free(got);
	free(shown);
	proc_release(&r);
	free(guide);
}
