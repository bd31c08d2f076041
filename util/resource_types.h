/*
 * resource_types: the resource types a page's requests may be blocked by (CDP's
 * Network.ResourceType names, lower-cased), and the check of a list of them as
 * BLOCK_RESOURCES and a target's "block_resources" write it. Pure; no allocation.
 */
#ifndef CDPILOT_UTIL_RESOURCE_TYPES_H
#define CDPILOT_UTIL_RESOURCE_TYPES_H

#include <stddef.h>

/* What a valid list is, for error messages. */
#define RESOURCE_LIST_EXPECTED                                                               \
	"'none' or a comma-separated list of document, stylesheet, image, media, font, "     \
	"script, texttrack, xhr, fetch, eventsource, websocket, manifest, other"

/* 1 if v is "none", or a comma-separated list of known resource types with no empty entry
 * and shorter than max bytes; else 0. */
int resource_list_valid(const char *v, size_t max);

#endif
