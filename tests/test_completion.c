/*
 * test_completion.c - bash and zsh completion (completion/): the scripts
 * load, and complete options, format values, subcommands and the plugin
 * names the pexec being completed lists; every option --help names is
 * known to both.  bash runs the completion function as readline would
 * call it (COMP_WORDS, COMP_CWORD); zsh, where it is installed, completes a
 * line typed into an interactive shell on a pseudo-terminal (zsh/zpty).
 * Waits are hang guards only.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <criterion/criterion.h>

#include "helpers.h"

TestSuite(completion, .timeout = 120);

#define BASH_SCRIPT PEXEC_SRC_DIR "/completion/pexec.bash"
#define ZSH_DIR PEXEC_SRC_DIR "/completion"

/* Runs `script` with sh -c; returns its exit status, its output in *out. */
static int shell(char **out, const char *script)
{
	char *text = NULL, buf[4096];
	size_t len = 0, n;
	FILE *p = popen(script, "r");
	int status;

	cr_assert_not_null(p);
	append(&text, &len, "", 0);
	while ((n = fread(buf, 1, sizeof(buf), p)) > 0)
		append(&text, &len, buf, n);
	status = pclose(p);
	*out = text;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The candidates bash's completion offers for the words `line` (the last
 * one being completed, '' for an empty one), one a line. */
static char *bash_complete(const char *line)
{
	char script[2048], *out;
	int rc;

	snprintf(script, sizeof(script),
	         "timeout %d bash --norc --noprofile -c 'source %s || exit 99; "
	         "COMP_WORDS=(%s %s); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); "
	         "_pexec; printf \"%%s\\n\" \"${COMPREPLY[@]}\"' 2>&1",
	         HANG_GUARD_S, BASH_SCRIPT, PEXEC, line);
	rc = shell(&out, script);
	cr_assert_eq(rc, 0, "bash: %s: exit %d: %s", line, rc, out);
	return out;
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

Test(completion, bash_completes_plugin_names_options_and_values)
{
	static const struct {
		const char *line;
		const char *want[5];
		const char *not;
	} cases[] = {
		{ "-p fac", { "factorial" }, NULL },
		{ "--plugin \"\"", { "factorial", "identity", "sleep", "wordcount" }, NULL },
		{ "-p ./nowhere/", { NULL }, "factorial" },
		{ "--inp", { "--input-format=" }, NULL },
		{ "--input-format \"\"", { "json", "ndjson", "lines", "nul" }, NULL },
		{ "--input-format = l", { "lines" }, NULL },
		{ "--output-format \"\"", { "json", "ndjson" }, "lines" },
		{ "--progress = \"\"", { "auto", "plain" }, NULL },
		{ "-j c", { "cores" }, NULL },
		{ "--re", { "--reduce", "--resume", "--retries", "--retry-failed" }, NULL },
		{ "ch", { "check" }, NULL },
		{ "li", { "list" }, NULL },
		{ "list --", { "--json", "--help" }, NULL },
		{ "list \"\"", { NULL }, "factorial" },
		{ "check wor", { "wordcount" }, NULL },
		{ "info \"\"", { "factorial", "identity" }, NULL },
		{ "check factorial --m", { "--must-fail" }, NULL },
		{ "-p factorial -q", { "-q" }, NULL },
	};

	for (size_t i = 0; i < COUNT(cases); i++) {
		char *got = bash_complete(cases[i].line);

		for (size_t k = 0; k < COUNT(cases[i].want) && cases[i].want[k]; k++)
			cr_expect(has_line(got, cases[i].want[k]), "'%s': no %s among:\n%s",
			          cases[i].line, cases[i].want[k], got);
		if (cases[i].not)
			cr_expect_not(has_line(got, cases[i].not), "'%s': %s offered:\n%s",
			              cases[i].line, cases[i].not, got);
		free(got);
	}
}

/* The plugins come from the pexec being completed: PEXEC_PLUGIN_PATH's too. */
Test(completion, bash_offers_the_plugins_pexec_finds)
{
	char *got;

	setenv("PEXEC_PLUGIN_PATH", PEXEC_TEST_BUILD "/tests/plugins", 1);
	got = bash_complete("-p fau");
	cr_expect(has_line(got, "faulty") && has_line(got, "faults"), "%s", got);
	free(got);
	unsetenv("PEXEC_PLUGIN_PATH");
}

/* Each long option --help names is in `script`. */
static void expect_every_option_in(const char *script, const char *what)
{
	char *text = read_file(script, &(size_t){ 0 });
	struct proc r;
	size_t n = 0;

	cr_assert_not_null(text, "%s", script);
	run(&r, NULL, "--help", NULL);
	for (const char *p = r.out; (p = strstr(p, "--")); p += 2) {
		char opt[64];
		size_t len = 2;

		if (p > r.out && (isalnum((unsigned char)p[-1]) || p[-1] == '-'))
			continue;
		while (len < sizeof(opt) - 1 && (islower((unsigned char)p[len]) || p[len] == '-'))
			len++;
		if (len == 2)
			continue;
		snprintf(opt, sizeof(opt), "%.*s", (int)len, p);
		cr_expect_not_null(strstr(text, opt), "%s does not know %s", what, opt);
		n++;
	}
	cr_expect_geq(n, 25);
	proc_release(&r);
	free(text);
}

Test(completion, both_scripts_know_every_option)
{
	expect_every_option_in(BASH_SCRIPT, "the bash completion");
	expect_every_option_in(ZSH_DIR "/_pexec", "the zsh completion");
}

static int have(const char *cmd)
{
	char line[256], *out;
	int rc;

	snprintf(line, sizeof(line), "command -v %s >/dev/null 2>&1", cmd);
	rc = shell(&out, line);
	free(out);
	return rc == 0;
}

/* Types `line` and a tab into an interactive zsh on a pty, with compinit
 * and completion/ on its fpath, and waits for `want` to be shown. */
static int zsh_completes(const char *line, const char *want, char **out)
{
	char script[4096];

	snprintf(script, sizeof(script),
	         "cd %s && timeout %d zsh -f -c '"
	         "zmodload zsh/zpty || exit 98; "
	         "zpty -b z zsh -f -i; "
	         "zpty -w z \"PS1=\\\"> \\\"; fpath=(%s \\$fpath); autoload -U compinit; "
	         "compinit -u -D; unsetopt beep\"; "
	         "zpty -w z \"echo READY\"; zpty -r z got \"*READY*\"; "
	         "zpty -w -n z \"%s %s\"$'\\''\\t'\\''; "
	         "zpty -r z got \"*%s*\" && print -r -- \"$got\"; "
	         "s=$?; zpty -d z; exit $s' 2>&1",
	         PEXEC_SRC_DIR, 30, ZSH_DIR, PEXEC, line, want);
	return shell(out, script);
}

Test(completion, zsh_loads_and_completes_a_plugin_name)
{
	char *out;
	int rc;

	if (!have("zsh")) {
		cr_log_warn("zsh is not installed: its completion was not run");
		return;
	}
	rc = shell(&out, "zsh -n " ZSH_DIR "/_pexec 2>&1");
	cr_expect_eq(rc, 0, "zsh -n: %s", out);
	free(out);
	rc = zsh_completes("-p fac", "factorial", &out);
	cr_expect_eq(rc, 0, "zsh did not complete factorial: %s", out);
	free(out);
	rc = zsh_completes("--input-format=", "ndjson", &out);
	cr_expect_eq(rc, 0, "zsh did not offer the formats: %s", out);
	free(out);
}
