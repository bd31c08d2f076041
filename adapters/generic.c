/* Placeholder so the registry links while the adapter is being written. */
#include "adapters/adapter.h"

const adapter_t adapter_generic = {
	.name = "generic",
	.summary = "(not implemented yet)",
	.needs_browser = 1,
};
