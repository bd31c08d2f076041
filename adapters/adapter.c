#include "adapters/adapter.h"

#include <string.h>

/* The registry: one line per adapter. */
static const adapter_t *const registry[] = {
	&adapter_generic,
	&adapter_jsonapi,
	&adapter_livescore,
	&adapter_script,
};

const adapter_t *adapter_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
		if (strcmp(registry[i]->name, name) == 0)
			return registry[i];
	return NULL;
}

const adapter_t *const *adapter_all(size_t *n)
{
	*n = sizeof registry / sizeof registry[0];
	return registry;
}
