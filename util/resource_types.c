/* resource_types: see resource_types.h. */
#include "util/resource_types.h"

#include <string.h>

static const char *const resource_types[] = { "document", "stylesheet", "image", "media",
	                                      "font", "script", "texttrack", "xhr", "fetch",
	                                      "eventsource", "websocket", "manifest", "other" };

int resource_list_valid(const char *v, size_t max)
{
	if (strcmp(v, "none") == 0)
		return 1;
	if (!*v || strlen(v) >= max)
		return 0;
	for (;;) {
		size_t n = strcspn(v, ","), i;
		for (i = 0; i < sizeof resource_types / sizeof resource_types[0]; i++)
			if (strlen(resource_types[i]) == n && strncmp(resource_types[i], v, n) == 0)
				break;
		if (n == 0 || i == sizeof resource_types / sizeof resource_types[0])
			return 0;
		if (v[n] == '\0')
			return 1;
		v += n + 1;
	}
}
