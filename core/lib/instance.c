/*
 * instance.c - a plugin's hooks driven in this process (pexec.h,
 * pexec_instance_*): the same item path and fold as the workers' (item.h),
 * behind a handle that owns the plugin's state and a fold's value.
 *
 * `pexec check` drives plugins through this, and pexec-mpi folds partial
 * results with it; neither needs to know how the library runs a hook.
 */
#include <stdlib.h>
#include <string.h>

#include "pexec.h"
#include "util.h"
#include "item.h"

struct pexec_instance {
	const pexec_loaded_plugin *plugin;
	const pexec_descriptor *d;
	void *state;
	void *acc;       /* the fold's value */
	int acc_started; /* acc holds reduce_initial or more */
	pexec_buf item;  /* the item with the NUL the hooks are promised */
	pexec__splitter *check; /* results are checked as in workers */
};

pexec_code pexec_instance_open(const pexec_loaded_plugin *plugin, const char *config,
                               pexec_instance **out, pexec_error *err)
{
	pexec_instance *in = calloc(1, sizeof(*in));
	pexec_error why;

	*out = NULL;
	if (!in)
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	in->d = pexec_plugin_descriptor(plugin);
	pexec__buf_init(&in->item);
	in->check = pexec__split_checker();
	if (!in->check) {
		free(in);
		return pexec__fail(err, PEXEC_ESYS, "out of memory");
	}
	in->plugin = plugin;
	if (pexec_plugin_setup(plugin, config, err)) {
		pexec__split_free(in->check);
		free(in);
		return PEXEC_EINIT;
	}
	if (pexec__plugin_init(in->d, config, &in->state, &why)) {
		pexec_code rc = pexec__fail(err, PEXEC_EINIT, "plugin '%s' init failed: %s",
		                            in->d->name, why.msg);
		pexec_plugin_teardown(plugin);
		pexec__split_free(in->check);
		free(in);
		return rc;
	}
	*out = in;
	return PEXEC_OK;
}

pexec_stage pexec_instance_map(pexec_instance *in, const char *data, size_t len,
                               pexec_buf *out, pexec_error *err)
{
	in->item.len = 0;
	if (pexec_buf_reserve(&in->item, len + 1)) {
		pexec__fail(err, PEXEC_ESYS, "out of memory");
		return PEXEC_STAGE_DESERIALIZE;
	}
	memcpy(in->item.data, data, len);
	in->item.data[len] = '\0';
	return pexec__item_run(in->d, in->state, in->item.data, len, out, in->check, err, NULL);
}

int pexec_instance_rewrite(pexec_instance *in, const char *text, size_t len, pexec_buf *out,
                           pexec_error *err)
{
	const pexec_descriptor *d = in->d;
	void *v = NULL;

	/* Inputs and results are of one kind with neither hook (cJSON trees),
	 * or with both on a reducing plugin (whose partials cross that way);
	 * elsewhere deserialize reads another kind of value. */
	if (!d->deserialize != !d->serialize || (d->deserialize && !d->reduce))
		return 0;
	in->item.len = 0;
	if (pexec_buf_reserve(&in->item, len + 1)) {
		pexec__fail(err, PEXEC_ESYS, "out of memory");
		return -1;
	}
	memcpy(in->item.data, text, len);
	in->item.data[len] = '\0';
	if (pexec__value_from_text(d, in->state, in->item.data, len, &v, err)) {
		char why[PEXEC_ERROR_MAX];
		memcpy(why, err->msg, sizeof(why));
		pexec__fail(err, PEXEC_EITEM, "%s refused it: %s",
		            d->deserialize ? "deserialize" : "cJSON", why);
		return -1;
	}
	return pexec__fold_finish(d, in->state, &v, out, in->check, err) ? -1 : 1;
}

/* The fold's value starts as reduce_initial, made when first needed. */
static pexec_code fold_begin(pexec_instance *in, pexec_error *err)
{
	if (in->acc_started)
		return PEXEC_OK;
	if (pexec__fold_start(in->d, in->state, &in->acc, err))
		return PEXEC_ESTOPPED;
	in->acc_started = 1;
	return PEXEC_OK;
}

pexec_code pexec_instance_fold(pexec_instance *in, const char *text, size_t len,
                               pexec_error *err)
{
	if (!in->d->reduce)
		return pexec__fail(err, PEXEC_EUSAGE, "plugin '%s' has no reduce hook", in->d->name);
	if (fold_begin(in, err) || pexec__fold_text(in->d, in->state, &in->acc, text, len, err))
		return PEXEC_ESTOPPED;
	return PEXEC_OK;
}

pexec_code pexec_instance_fold_take(pexec_instance *in, pexec_buf *out, pexec_error *err)
{
	int rc;

	if (fold_begin(in, err))
		return PEXEC_ESTOPPED;
	in->acc_started = 0;
	rc = pexec__fold_finish(in->d, in->state, &in->acc, out, in->check, err);
	in->acc = NULL;
	return rc ? PEXEC_ESTOPPED : PEXEC_OK;
}

void pexec_instance_close(pexec_instance *in)
{
	if (!in)
		return;
	if (in->acc_started)
		pexec__fold_free(in->d, in->state, in->acc);
	pexec__plugin_fini(in->d, in->state);
	pexec_plugin_teardown(in->plugin);
	pexec__buf_release(&in->item);
	pexec__split_free(in->check);
	free(in);
}
