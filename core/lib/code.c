/*
 * code.c - the strings and exit statuses behind pexec_code and pexec_stage.
 */
#include "pexec.h"

static const char *const code_text[] = {
#define PEXEC_CODE_TEXT(name, text) text,
	PEXEC_CODE_MAP(PEXEC_CODE_TEXT)
#undef PEXEC_CODE_TEXT
};

const char *pexec_code_str(pexec_code code)
{
	if ((unsigned)code >= PEXEC_CODE_COUNT)
		return "unknown error";
	return code_text[code];
}

int pexec_exit_status(pexec_code code)
{
	switch (code) {
	case PEXEC_OK:
		return 0;
	case PEXEC_EITEM:
	case PEXEC_ESTOPPED:
		return 1;
	case PEXEC_EUSAGE:
	case PEXEC_EINPUT:
	case PEXEC_ELOAD:
	case PEXEC_EINIT:
		return 2;
	case PEXEC_ECANCELED:
		return 130;
	case PEXEC_ESYS:
	case PEXEC_EPIPE:
	default:
		return 3;
	}
}

const char *pexec_stage_str(pexec_stage stage)
{
	switch (stage) {
	case PEXEC_STAGE_INIT:
		return "init";
	case PEXEC_STAGE_DESERIALIZE:
		return "deserialize";
	case PEXEC_STAGE_MAP:
		return "map";
	case PEXEC_STAGE_SERIALIZE:
		return "serialize";
	case PEXEC_STAGE_WORKER:
		return "worker";
	case PEXEC_STAGE_REDUCE:
		return "reduce";
	case PEXEC_STAGE_NONE:
	default:
		return "none";
	}
}

const char *pexec_status_str(pexec_status status)
{
	static const char *const names[PEXEC_STATUS_COUNT] = {
		"ok", "error", "crashed", "exited", "killed", "timeout", "lost",
	};

	return (unsigned)status < PEXEC_STATUS_COUNT ? names[status] : "unknown";
}
