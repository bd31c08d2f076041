/*
 * libFuzzer target for cdp_json, differential against jansson: whatever the input, the
 * fast reader either hands it back (NULL) or builds exactly the tree json_loadb builds
 * with JSON_REJECT_DUPLICATES, and what it builds is written back as json_dumps writes it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdp/cdp_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *fast = cdp_json_parse((const char *)data, size);
	json_t *ref;
	growbuf_t gb;
	char *want;

	if (!fast)
		return 0;
	ref = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	if (!ref || !json_equal(fast, ref))
		abort(); /* took what jansson rejects, or built another tree */
	want = json_dumps(ref, JSON_COMPACT);
	growbuf_init(&gb, 1u << 26);
	if (!want || cdp_json_write(&gb, fast) != 0 || strcmp(gb.data, want) != 0)
		abort(); /* written otherwise than json_dumps writes it */
	growbuf_release(&gb);
	free(want);
	json_decref(ref);
	json_decref(fast);
	return 0;
}
